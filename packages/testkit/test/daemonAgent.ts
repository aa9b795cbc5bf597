/**
 * A real agent daemon (`AgentDaemon.run`) in this process, in a HOME of its own, for the cluster suites: it runs
 * real processes, reconnects on a short backoff, and logs nothing.
 */
import * as AgentDaemon from "@cmdop/agent/AgentDaemon"
import * as AgentIdentity from "@cmdop/agent/AgentIdentity"
import * as DaemonCredential from "@cmdop/agent/DaemonCredential"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import type { MachineId } from "@cmdop/domain/Machine"
import * as OAuthSession from "@cmdop/domain/OAuthSession"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"

/**
 * Starts an agent daemon with workspace key `key`, dialing `server` (one address or a comma-separated list), for
 * the life of the scope; yields its machine id. `home` (default a fresh one) keeps the machine's identity: a daemon
 * started again in the same home is the same machine.
 */
export const startAgent = (key: string, hostname: string, server: string, home?: string) =>
  Effect.gen(function* () {
    const dir = home ?? (yield* TempHome.make("cmdop-agent-"))
    const env = Layer.mergeAll(NodeFileSystem.layer, CmdopPaths.layerHome(dir), ProcessRunner.layer)
    const credential = DaemonCredential.layer.pipe(Layer.provide(OAuthSession.layerEmpty), Layer.provide(env))
    const identity = yield* AgentIdentity.loadOrCreate({ hostname }).pipe(Effect.provide(env))
    yield* AgentDaemon.run({
      overrides: { apiKey: Redacted.make(key), server },
      backoff: { base: "50 millis", cap: "500 millis" }
    }).pipe(Effect.provide(Layer.merge(env, credential)), Logger.withMinimumLogLevel(LogLevel.None), Effect.forkScoped)
    return identity.machine_id as MachineId
  })
