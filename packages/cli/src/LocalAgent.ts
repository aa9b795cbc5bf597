/**
 * This machine's agent as the `agent` and `up` commands drive it: registration, the daemon, and its status files.
 * Loaded lazily (it pulls in grpc-js and the process runner), which is why the process runner's layer is provided
 * here rather than in `Layers.ts`; the file system and paths come from the composition root.
 */
import * as AgentDaemon from "@cmdop/agent/AgentDaemon"
import * as DaemonCredential from "@cmdop/agent/DaemonCredential"
import * as DaemonStatus from "@cmdop/agent/DaemonStatus"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import type * as CredentialResolver from "@cmdop/domain/CredentialResolver"
import * as HeapTrim from "@cmdop/node/HeapTrim"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

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

/**
 * The daemon resolves its credential with its own resolver, which re-reads the workspace file on every resolve
 * (the CLI's resolver keeps its first load, so a running daemon would miss another process's `workspace use`).
 * It gives its C heap back after bursts of data (`HeapTrim`).
 */
export const runDaemon = (options: AgentDaemon.Options) =>
  AgentDaemon.run(options).pipe(
    Effect.provide(Layer.mergeAll(ProcessRunner.layer, DaemonCredential.layer, HeapTrim.layer))
  )

export const readStatus = DaemonStatus.read
export const runningPid = DaemonStatus.runningPid
export const isAlive = DaemonStatus.isAlive
