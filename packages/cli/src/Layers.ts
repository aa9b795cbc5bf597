/**
 * The services the CLI runs on: the local store under `$HOME/.cmdop`, the credential resolver and (until
 * `cmdop login` exists) an empty OAuth session. Tests swap `CmdopPaths` for a temp home.
 *
 * Only the platform services the CLI uses are pulled in (not all of NodeContext), to keep the cold start low.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as CredentialResolver from "@cmdop/domain/CredentialResolver"
import * as OAuthSession from "@cmdop/domain/OAuthSession"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as WorkspaceStoreLive from "@cmdop/node/WorkspaceStoreLive"
import * as Layer from "effect/Layer"

const platform = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer)

/** Everything the local commands need, given where `~/.cmdop` is. */
export const layerLocal = <E, R>(paths: Layer.Layer<CmdopPaths.CmdopPaths, E, R>) => {
  const store = WorkspaceStoreLive.layerFileSystem.pipe(Layer.provide(paths), Layer.provide(platform))
  const resolver = CredentialResolver.layer.pipe(Layer.provide(store), Layer.provide(OAuthSession.layerEmpty))
  return Layer.mergeAll(store, resolver, paths, platform)
}

/** The CLI's real environment. */
export const layer = layerLocal(CmdopPaths.layer)
