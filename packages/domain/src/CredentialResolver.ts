/**
 * The one precedence chain that turns flags, environment, the workspace store and the OAuth session
 * into a credential and a relay address, used by every command, the daemon and the library.
 *
 * Key: `--api-key` (flag) → `CMDOP_API_KEY` (env) → the workspace named by `--workspace`/`CMDOP_WORKSPACE`
 * (workspace; an unknown name is an error, never a fall-through) → the active workspace (workspace) → the OAuth
 * session (oauth) → a `CredentialError` saying how to fix it.
 * Server: `--server` → `CMDOP_SERVER` (alias `CMDOP_GRPC_SERVER`) → the chosen workspace's `server` → the OAuth
 * session's relay → `127.0.0.1:50051`.
 *
 * A stored credential goes only to the relay it is stored for (`RelayNode.covers`): the OAuth session's token to the
 * relay that issued it, a workspace's key to that workspace's `server` (when it has one). A call whose relay is
 * another one (a `--server`, `CMDOP_SERVER`, or a workspace without a key of its own under a login) fails with
 * `CredentialError` `OtherRelay` instead: a bearer token sent to a server is given to it. Keys given for the call
 * (`--api-key`, `CMDOP_API_KEY`) go where the call goes.
 *
 * Resolution only reads: per-call overrides never change saved state.
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { BearerCredential } from "./ApiKey.js"
import { CredentialError } from "./CredentialError.js"
import { OAuthSession, type Session } from "./OAuthSession.js"
import * as RelayNode from "./RelayNode.js"
import * as Workspace from "./Workspace.js"
import { WorkspaceError } from "./WorkspaceError.js"
import { WorkspaceStore } from "./WorkspaceStore.js"
import type { WorkspaceStoreError } from "./WorkspaceStoreError.js"

/** The relay address used when nothing names one. */
export const DEFAULT_SERVER = "127.0.0.1:50051"

export type KeySource = "flag" | "env" | "workspace" | "oauth"
export type ServerSource = KeySource | "default"

/** Per-call overrides from the command line. */
export interface Overrides {
  readonly apiKey?: Redacted.Redacted<string> | undefined
  readonly server?: string | undefined
  readonly workspace?: string | undefined
}

/** The environment variables the chain reads. Empty strings count as unset. */
export interface Environment {
  readonly CMDOP_API_KEY?: string | undefined
  readonly CMDOP_WORKSPACE?: string | undefined
  readonly CMDOP_SERVER?: string | undefined
  readonly CMDOP_GRPC_SERVER?: string | undefined
}

export interface Resolved {
  readonly apiKey: Redacted.Redacted<string>
  readonly source: KeySource
  /** The stored workspace the call runs in (named, or active), if any. */
  readonly workspace: Workspace.WorkspaceName | undefined
  readonly server: string
  readonly serverSource: ServerSource
}

export type ResolveError = CredentialError | WorkspaceError | WorkspaceStoreError

const present = (s: string | undefined): s is string => s !== undefined && s.trim() !== ""

const checkKey = (raw: string, origin: string): Effect.Effect<Redacted.Redacted<string>, CredentialError> =>
  Schema.decodeUnknown(BearerCredential)(raw).pipe(
    Effect.map(Redacted.make),
    Effect.mapError(
      (e) =>
        new CredentialError({ reason: "Malformed", origin, detail: e.message.split("\n").pop()?.trim() ?? "invalid" })
    )
  )

/**
 * The chain as a pure function of its inputs (no I/O): what the service runs after reading the store, the
 * environment and the OAuth session. Exported for property tests and for embedding programs.
 */
export const resolveWith = (inputs: {
  readonly overrides: Overrides
  readonly env: Environment
  readonly file: Workspace.WorkspaceFile
  readonly oauth: Option.Option<Session>
}): Effect.Effect<Resolved, CredentialError | WorkspaceError> =>
  Effect.gen(function* () {
    const { env, file, oauth, overrides } = inputs
    const named = present(overrides.workspace)
      ? overrides.workspace
      : present(env.CMDOP_WORKSPACE)
        ? env.CMDOP_WORKSPACE
        : undefined
    // A named workspace must exist; the active one may have been removed, which just means "none".
    // Under a login, a workspace the person belongs to is stored by `workspace sync`: the error says so.
    const chosen =
      named !== undefined
        ? yield* Workspace.get(file, named).pipe(
            Effect.mapError((e) =>
              Option.isSome(oauth) && e.reason === "NotFound" ? new WorkspaceError({ ...e, signedIn: true }) : e
            )
          )
        : activeOrUndefined(file)

    type Key = { readonly apiKey: Redacted.Redacted<string>; readonly source: KeySource }
    const key = yield* Effect.suspend((): Effect.Effect<Key, CredentialError> => {
      if (overrides.apiKey !== undefined && Redacted.value(overrides.apiKey) !== "")
        return Effect.map(checkKey(Redacted.value(overrides.apiKey), "--api-key"), (apiKey) => ({
          apiKey,
          source: "flag" as const
        }))
      if (present(env.CMDOP_API_KEY))
        return Effect.map(checkKey(env.CMDOP_API_KEY, "CMDOP_API_KEY"), (apiKey) => ({
          apiKey,
          source: "env" as const
        }))
      if (chosen && Workspace.hasKey(chosen))
        return Effect.map(checkKey(Redacted.value(chosen.api_key!), `workspace "${chosen.name}"`), (apiKey) => ({
          apiKey,
          source: "workspace" as const
        }))
      if (Option.isSome(oauth)) return Effect.succeed({ apiKey: oauth.value.accessToken, source: "oauth" as const })
      return Effect.fail(
        new CredentialError(named === undefined ? { reason: "Missing", ...missingActive(file) } : { reason: "Missing" })
      )
    })

    const server: { readonly server: string; readonly serverSource: ServerSource; readonly origin?: string } = present(
      overrides.server
    )
      ? { server: overrides.server.trim(), serverSource: "flag" }
      : present(env.CMDOP_SERVER)
        ? { server: env.CMDOP_SERVER.trim(), serverSource: "env" }
        : present(env.CMDOP_GRPC_SERVER)
          ? { server: env.CMDOP_GRPC_SERVER.trim(), serverSource: "env", origin: "CMDOP_GRPC_SERVER" }
          : chosen && present(chosen.server)
            ? { server: chosen.server.trim(), serverSource: "workspace" }
            : Option.isSome(oauth) && present(oauth.value.server)
              ? { server: oauth.value.server, serverSource: "oauth" }
              : { server: DEFAULT_SERVER, serverSource: "default" }

    yield* boundToItsRelay(key.source, chosen, oauth, server)
    return { ...key, server: server.server, serverSource: server.serverSource, workspace: chosen?.name }
  })

const SERVER_ORIGIN: Record<ServerSource, string> = {
  flag: "--server",
  env: "CMDOP_SERVER",
  workspace: "the workspace's server",
  oauth: "the login's relay",
  default: "the default relay"
}

/**
 * The error's words for a call whose address `outside` says the credential may not go to: another relay, a list
 * with a node that is not the credential's relay (the first that answers is dialed), or the credential's node
 * dialed without its TLS. `fix` is the way out when it is another relay.
 */
const otherRelay = (
  origin: string,
  stored: string,
  via: string,
  call: string,
  outside: RelayNode.Outside,
  fix: string
): CredentialError =>
  new CredentialError({
    reason: "OtherRelay",
    origin,
    detail:
      outside.reason === "plaintext"
        ? `it is for the relay ${stored} over TLS, and this call goes to ${via} in plaintext, which shows it to the network; use https://${RelayNode.addressOf(outside.entry)} instead`
        : outside.entry !== call
          ? `it is for the relay ${stored}, and this call goes to ${via}, whose node ${outside.entry} is not that relay's (a list's first node that answers gets the call); list only that relay's nodes, or ${fix}`
          : `it is for the relay ${stored}, and this call goes to ${via}; ${fix}`
  })

/**
 * Fails when the credential found is stored for another relay than the one the call goes to (see the header): every
 * node the call may dial must be one of the credential's relay, over TLS when that relay was stored with TLS. A
 * workspace without a `server` keeps its key for whichever relay the call names (nothing says which it is for).
 */
const boundToItsRelay = (
  source: KeySource,
  chosen: Workspace.Workspace | undefined,
  oauth: Option.Option<Session>,
  to: { readonly server: string; readonly serverSource: ServerSource; readonly origin?: string }
): Effect.Effect<void, CredentialError> => {
  const origin = to.origin ?? SERVER_ORIGIN[to.serverSource]
  const via = `${to.server} (${origin})`
  if (source === "oauth" && Option.isSome(oauth)) {
    const outside = RelayNode.outside(oauth.value.server, to.server)
    if (outside !== undefined)
      return Effect.fail(
        otherRelay(
          "your login",
          oauth.value.server,
          via,
          to.server,
          outside,
          `sign in there with "cmdop login --server ${to.server}", or pass that relay's key with --api-key`
        )
      )
  }
  if (source === "workspace" && chosen !== undefined && present(chosen.server)) {
    const outside = RelayNode.outside(chosen.server, to.server)
    if (outside !== undefined)
      return Effect.fail(
        otherRelay(
          `the key of workspace "${chosen.name}"`,
          chosen.server.trim(),
          via,
          to.server,
          outside,
          // Not "move the workspace there": whoever got a person to type that --server would then get the key.
          `pass that relay's own key with --api-key, or leave out ${origin} to reach ${chosen.server.trim()}`
        )
      )
  }
  return Effect.void
}

/**
 * When the file names an active workspace it does not hold (removed by hand, a typo), the chain finds no key
 * there: the error says so, and how to pick one, instead of only "no credential".
 */
const missingActive = (file: Workspace.WorkspaceFile): { readonly detail?: string } => {
  const name = Workspace.activeName(file)
  if (name === undefined || Workspace.find(file, name) !== undefined) return {}
  const known = Workspace.names(file)
  return {
    detail: `the active workspace "${name}" does not exist (${
      known.length === 0 ? "no workspace is stored" : `stored: ${known.join(", ")}`
    }); "cmdop connect workspace use <name>" picks one, "cmdop connect workspace add <name> --api-key <key>" adds one`
  }
}

const activeOrUndefined = (file: Workspace.WorkspaceFile): Workspace.Workspace | undefined => {
  const name = Workspace.activeName(file)
  return name === undefined ? undefined : Workspace.find(file, name)
}

export class CredentialResolver extends Context.Tag("@cmdop/domain/CredentialResolver")<
  CredentialResolver,
  {
    /** Resolves key and server for one call. Reads only. */
    readonly resolve: (overrides: Overrides) => Effect.Effect<Resolved, ResolveError>
  }
>() {}

/** Reads the environment through `Config`, so tests can supply a `ConfigProvider`. */
export const environment: Effect.Effect<Environment> = Effect.gen(function* () {
  const opt = (name: string) => Config.option(Config.string(name)).pipe(Config.map(Option.getOrUndefined))
  return yield* Config.all({
    CMDOP_API_KEY: opt("CMDOP_API_KEY"),
    CMDOP_WORKSPACE: opt("CMDOP_WORKSPACE"),
    CMDOP_SERVER: opt("CMDOP_SERVER"),
    CMDOP_GRPC_SERVER: opt("CMDOP_GRPC_SERVER")
  })
}).pipe(Effect.orDie)

/** The resolver over the process's store, environment and OAuth session. */
export const layer: Layer.Layer<CredentialResolver, never, WorkspaceStore | OAuthSession> = Layer.effect(
  CredentialResolver,
  Effect.gen(function* () {
    const store = yield* WorkspaceStore
    const oauthSession = yield* OAuthSession
    return CredentialResolver.of({
      resolve: (overrides) =>
        Effect.gen(function* () {
          const file = yield* store.load
          const env = yield* environment
          const oauth = yield* oauthSession.current
          return yield* resolveWith({ overrides, env, file, oauth })
        })
    })
  })
)
