/**
 * This machine's agent as the `agent` and `up` commands drive it: registration, the daemon, and its status files.
 * Loaded lazily (it pulls in grpc-js and the process runner), which is why the process runner's layer is provided
 * here rather than in `Layers.ts`; the file system and paths come from the composition root.
 */
import * as AgentDaemon from "@cmdop/agent/AgentDaemon"
import * as DaemonStatus from "@cmdop/agent/DaemonStatus"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import type * as CredentialResolver from "@cmdop/domain/CredentialResolver"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import * as Effect from "effect/Effect"

export const register = (options: {
  readonly overrides: CredentialResolver.Overrides
  readonly hostname: string | undefined
  readonly name: string | undefined
}) =>
  Effect.gen(function* () {
    const target = yield* AgentDaemon.resolveTarget(options.overrides)
    return yield* AgentDaemon.register(options).pipe(
      Effect.mapError((e) => (e._tag === "GrpcStatusError" ? ErrorCodec.fromStatus(e, target.server) : e))
    )
  })

export const runDaemon = (options: AgentDaemon.Options) =>
  AgentDaemon.run(options).pipe(Effect.provide(ProcessRunner.layer))

export const readStatus = DaemonStatus.read
export const runningPid = DaemonStatus.runningPid
export const isAlive = DaemonStatus.isAlive
