/**
 * The CLI's composition root: every service the command tree runs on, in two variants.
 *
 * - `live`: the local store under `$HOME/.cmdop`, the process's stdio, relays over gRPC, the relay host's store
 *   on disk or PostgreSQL. What `bin.ts` runs.
 * - `memory`: an in-memory workspace store, an in-process relay (`InProcessRelay.ts`) and stdio to callbacks. No
 *   sockets and no child processes: for tests and for programs that embed the command tree.
 *
 * Both resolve credentials with `CredentialResolver.layer` (flag → env → workspace → OAuth session). Only the
 * platform services the CLI uses are pulled in (not all of NodeContext), and everything that talks to a relay
 * is loaded lazily, to keep the cold start low.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import type * as Terminal from "@effect/platform/Terminal"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as CredentialResolver from "@cmdop/domain/CredentialResolver"
import * as OAuthSession from "@cmdop/domain/OAuthSession"
import * as WorkspaceStore from "@cmdop/domain/WorkspaceStore"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as OAuthSessionLive from "@cmdop/node/OAuthSessionLive"
import * as WorkspaceStoreLive from "@cmdop/node/WorkspaceStoreLive"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Ref from "effect/Ref"
import type * as InProcessRelay from "./InProcessRelay.js"
import * as RelayConnector from "./RelayConnector.js"
import * as RelayHost from "./RelayHost.js"
import * as Stdio from "./Stdio.js"

/** What every command may use. */
export type Services =
  | WorkspaceStore.WorkspaceStore
  | CredentialResolver.CredentialResolver
  | OAuthSession.OAuthSession
  | CmdopPaths.CmdopPaths
  | FileSystem.FileSystem
  | Path.Path
  | Terminal.Terminal
  | Stdio.Stdio
  | RelayConnector.RelayConnector
  | RelayHost.RelayHost

const platform = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer)

/**
 * The workspace store, the OAuth session and the resolver over both. The session is in the output too, so a
 * daemon started from the CLI resolves its own credential from the same session.
 */
const credentials = <E, R>(
  store: Layer.Layer<WorkspaceStore.WorkspaceStore, E, R>,
  oauth: Layer.Layer<OAuthSession.OAuthSession>
) => Layer.provideMerge(CredentialResolver.layer, Layer.merge(store, oauth))

/**
 * The local commands' services on the file-backed store, given where `~/.cmdop` is (tests pass a temp home).
 * `oauth` defaults to no session (`live` passes the `token.json` one).
 */
export const layerLocal = <E, R>(
  paths: Layer.Layer<CmdopPaths.CmdopPaths, E, R>,
  oauth: Layer.Layer<OAuthSession.OAuthSession> = OAuthSession.layerEmpty
) => {
  const store = WorkspaceStoreLive.layerFileSystemWith({
    onLooseMode: (message) => Console.error(`cmdop: warning: ${message}`)
  }).pipe(Layer.provide(paths), Layer.provide(platform))
  return Layer.mergeAll(credentials(store, oauth), paths, platform)
}

/** The real CLI given where `~/.cmdop` is: the process's stdio, gRPC, the relay host's store on disk or PostgreSQL. */
export const layerLive = <E, R>(
  paths: Layer.Layer<CmdopPaths.CmdopPaths, E, R>,
  oauth: Layer.Layer<OAuthSession.OAuthSession> = OAuthSession.layerEmpty
): Layer.Layer<Services, E, R> =>
  Layer.mergeAll(layerLocal(paths, oauth), Stdio.layerProcess, RelayConnector.layerGrpc, RelayHost.layerStore)

/**
 * The real CLI: `$HOME/.cmdop`, the process's stdio, gRPC, the relay host's store on disk or PostgreSQL, and the
 * OAuth session of `cmdop login` in `~/.cmdop/token.json` (refreshed before it expires).
 */
export const live = layerLive(
  CmdopPaths.layer,
  OAuthSessionLive.layer.pipe(Layer.provide(Layer.merge(CmdopPaths.layer, NodeFileSystem.layer)))
)

export interface MemoryOptions {
  /**
   * The workspace store's file text (`ssh_workspaces.json`): an initial text, or a cell the caller holds, which
   * the store reads on its first load and rewrites on every update (so a program sees what commands wrote, and
   * several builds of these layers share one store, as processes share the file). None by default.
   */
  readonly workspaces?: string | Ref.Ref<string | undefined>
  /** An OAuth session the resolver falls back to; none by default. */
  readonly oauth?: OAuthSession.Session
  /** Where `~/.cmdop` would be, for the few paths commands print; nothing is written there by remote commands. */
  readonly home?: string
  /** Stdin and where remote output goes; by default nothing is piped and output goes to the process's stdio. */
  readonly stdio?: Stdio.MemoryOptions
  /** The in-process relay's address and share-link base URL. */
  readonly relay?: InProcessRelay.Options
}

/**
 * The whole CLI in memory: an in-memory workspace store, an in-process relay (whose core, store and share
 * service are in the output, so a program can create workspaces and attach agents), the in-memory process runner
 * those agents run commands on (`ProcessRunnerMemory`), stdio to callbacks.
 */
export const memory = (options: MemoryOptions = {}): Layer.Layer<Services | InProcessRelay.Services> => {
  const oauth = OAuthSession.layerMemory(options.oauth)
  const relay = Layer.unwrapEffect(
    Effect.map(
      Effect.promise(() => import("./InProcessRelay.js")),
      (InProcess) => InProcess.layer(options.relay)
    )
  )
  return Layer.mergeAll(
    credentials(
      typeof options.workspaces === "object"
        ? Layer.effect(WorkspaceStore.WorkspaceStore, WorkspaceStore.makeMemory(options.workspaces))
        : WorkspaceStore.layerMemory(options.workspaces),
      oauth
    ),
    CmdopPaths.layerHome(options.home ?? "/nonexistent/cmdop-memory-home"),
    platform,
    Stdio.layerMemory(
      options.stdio ?? {
        stdout: (data) => void process.stdout.write(data),
        stderr: (data) => void process.stderr.write(data)
      }
    ),
    relay
  )
}
