/**
 * This machine's agent as the `agent` and `up` commands drive it: registration, the daemon, and its status files,
 * with their Node layers provided. Loaded lazily (it pulls in grpc-js and the process runner).
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as AgentDaemon from "@cmdop/agent/AgentDaemon"
import * as DaemonStatus from "@cmdop/agent/DaemonStatus"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import type * as CredentialResolver from "@cmdop/domain/CredentialResolver"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const live = Layer.mergeAll(NodeFileSystem.layer, ProcessRunner.layer)

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
  }).pipe(Effect.provide(NodeFileSystem.layer))

export const runDaemon = (options: AgentDaemon.Options) => AgentDaemon.run(options).pipe(Effect.provide(live))

export const readStatus = DaemonStatus.read.pipe(Effect.provide(NodeFileSystem.layer))
export const runningPid = DaemonStatus.runningPid.pipe(Effect.provide(NodeFileSystem.layer))
export const isAlive = DaemonStatus.isAlive
