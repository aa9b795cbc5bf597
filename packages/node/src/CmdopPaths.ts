/**
 * Where cmdop keeps its local state (docs/security.md): `~/.cmdop/` under `$HOME`, and the audit log under
 * `$XDG_STATE_HOME/cmdop/`. Tests point `HOME` at a temp dir; embedding programs can provide their own paths.
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as os from "node:os"
import * as path from "node:path"

export interface Paths {
  /** `~/.cmdop` */
  readonly root: string
  readonly workspaces: string
  readonly token: string
  readonly agent: string
  readonly permissions: string
  readonly daemonStatus: string
  readonly pidFile: string
  readonly agentLog: string
  /** The relay's default data dir (`~/.cmdop/relay`). */
  readonly relayData: string
  /** `$XDG_STATE_HOME/cmdop` (default `~/.local/state/cmdop`). */
  readonly stateDir: string
  /** Renders a path for messages, with the home directory shown as `~`. */
  readonly display: (p: string) => string
}

export class CmdopPaths extends Context.Tag("@cmdop/node/CmdopPaths")<CmdopPaths, Paths>() {}

/** The paths for a given home directory. */
export const forHome = (home: string, stateHome?: string): Paths => {
  const root = path.join(home, ".cmdop")
  const state = stateHome && stateHome !== "" ? stateHome : path.join(home, ".local", "state")
  return {
    root,
    workspaces: path.join(root, "ssh_workspaces.json"),
    token: path.join(root, "token.json"),
    agent: path.join(root, "agent.json"),
    permissions: path.join(root, "permissions.yaml"),
    daemonStatus: path.join(root, "daemon.status"),
    pidFile: path.join(root, "cmdop.pid"),
    agentLog: path.join(root, "agent.log"),
    relayData: path.join(root, "relay"),
    stateDir: path.join(state, "cmdop"),
    display: (p) => (p === home ? "~" : p.startsWith(home + path.sep) ? "~" + p.slice(home.length) : p)
  }
}

/** Paths from `$HOME` (falling back to the OS's idea of home) and `$XDG_STATE_HOME`. */
export const layer: Layer.Layer<CmdopPaths> = Layer.effect(
  CmdopPaths,
  Effect.gen(function* () {
    const home = yield* Config.string("HOME").pipe(Config.withDefault(os.homedir()))
    const state = yield* Config.string("XDG_STATE_HOME").pipe(Config.withDefault(""))
    return forHome(home === "" ? os.homedir() : home, state)
  }).pipe(Effect.orDie)
)

/** Fixed paths under a given home, for tests and embedding. */
export const layerHome = (home: string): Layer.Layer<CmdopPaths> => Layer.succeed(CmdopPaths, forHome(home))
