/**
 * The credential resolver's contract in both of the CLI's worlds: the composition root's live layers (the
 * file-backed store in a temp HOME, the process's real environment) and its memory layers (the in-memory store,
 * an environment from a `ConfigProvider`), each with an OAuth session held in memory.
 */
import { credentialResolverContract } from "@cmdop/domain/testing/CredentialResolverContract"
import * as OAuthSession from "@cmdop/domain/OAuthSession"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Layers from "../src/Layers.js"

const VARIABLES = ["CMDOP_API_KEY", "CMDOP_WORKSPACE", "CMDOP_SERVER", "CMDOP_GRPC_SERVER"] as const

/** Sets exactly `env`'s CMDOP_* variables in `process.env` until the scope closes, then restores them. */
const processEnv = (env: Partial<Record<(typeof VARIABLES)[number], string | undefined>>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const saved = VARIABLES.map((name) => [name, process.env[name]] as const)
      for (const name of VARIABLES) {
        const value = env[name]
        if (value === undefined) delete process.env[name]
        else process.env[name] = value
      }
      return saved
    }),
    (saved) =>
      Effect.sync(() => {
        for (const [name, value] of saved) {
          if (value === undefined) delete process.env[name]
          else process.env[name] = value
        }
      })
  )

credentialResolverContract("live: file-backed store in a temp HOME, the process environment", (setup) =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-resolver-")
      if (setup.workspaces !== undefined) {
        fs.mkdirSync(path.join(home, ".cmdop"), { mode: 0o700 })
        fs.writeFileSync(path.join(home, ".cmdop", "ssh_workspaces.json"), setup.workspaces, { mode: 0o600 })
      }
      yield* processEnv(setup.env)
      return Layers.layerLive(CmdopPaths.layerHome(home), OAuthSession.layerMemory(setup.oauth))
    })
  )
)

credentialResolverContract("memory: the in-memory store, an environment from a ConfigProvider", (setup) =>
  Layer.merge(
    Layers.memory({
      ...(setup.workspaces === undefined ? {} : { workspaces: setup.workspaces }),
      ...(setup.oauth === undefined ? {} : { oauth: setup.oauth })
    }),
    Layer.setConfigProvider(
      ConfigProvider.fromMap(
        new Map(Object.entries(setup.env).filter((e): e is [string, string] => e[1] !== undefined))
      )
    )
  )
)
