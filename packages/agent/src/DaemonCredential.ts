/**
 * The credential resolver a long-running daemon needs: the domain's one precedence chain (`CredentialResolver.layer`:
 * flags, environment, workspace store, OAuth session) over a workspace store that is read anew on every `resolve`,
 * so the daemon notices another process's `workspace use` or `key set`. (The CLI's store keeps its first load for
 * the life of the command, which is right for a command and wrong for a daemon.)
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as CredentialResolver from "@cmdop/domain/CredentialResolver"
import type { OAuthSession } from "@cmdop/domain/OAuthSession"
import { WorkspaceStore } from "@cmdop/domain/WorkspaceStore"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as WorkspaceStoreLive from "@cmdop/node/WorkspaceStoreLive"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** The store at `CmdopPaths.workspaces`, each `load` and `update` on a fresh read of the file. */
export const layerStore: Layer.Layer<WorkspaceStore, never, FileSystem.FileSystem | CmdopPaths> = Layer.effect(
  WorkspaceStore,
  Effect.gen(function* () {
    const paths = yield* CmdopPaths
    const context = yield* Effect.context<FileSystem.FileSystem>()
    const fresh = WorkspaceStoreLive.make(paths.workspaces, paths.display).pipe(Effect.provide(context))
    return WorkspaceStore.of({
      path: paths.display(paths.workspaces),
      load: Effect.flatMap(fresh, (store) => store.load),
      update: (f) => Effect.flatMap(fresh, (store) => store.update(f))
    })
  })
)

/** `CredentialResolver.layer` over {@link layerStore}; the app provides the OAuth session. */
export const layer: Layer.Layer<
  CredentialResolver.CredentialResolver,
  never,
  FileSystem.FileSystem | CmdopPaths | OAuthSession
> = CredentialResolver.layer.pipe(Layer.provide(layerStore))
