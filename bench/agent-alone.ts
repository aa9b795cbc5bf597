/**
 * The agent's exec output path alone, in one process: the real `AgentEngine` and `ProcessRunner` run
 * `head -c BYTES /dev/zero`; the link serializes every message the agent sends with the real `AgentService` codec
 * and copies the bytes once, as grpc-js frames them, then runs the message's write hook (`@cmdop/grpc/GrpcWritten`),
 * and acknowledges each output message at once, as a relay with a fast client would.
 * No gRPC, no relay: CPU per MB of this process is the agent's own work on the data path, and on a machine shared
 * with other work it varies far less than the full bench's figures. Prints one JSON line.
 *
 * `node bench/agent-alone.mjs [BYTES]` after bundling (see README: bundle it like the other tools).
 */
import * as AgentEngine from "@cmdop/agent/AgentEngine"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import type * as AgentLink from "@cmdop/domain/AgentLink"
import * as GrpcWritten from "@cmdop/grpc/GrpcWritten"
import * as AgentService from "@cmdop/protocol/AgentService"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"

const bytes = Number(process.argv[2] ?? 256 * 1024 * 1024)
const serialize = AgentService.definition.connect.requestSerialize as (m: AgentLink.AgentMessage) => Buffer

const program = Effect.gen(function* () {
  const incoming = yield* Queue.unbounded<AgentLink.RelayMessage>()
  const exited = yield* Deferred.make<void>()
  let received = 0
  let messages = 0
  const send = (m: AgentLink.AgentMessage) =>
    Effect.suspend(() => {
      // As grpc-js does: frame the serialized bytes (a copy), then report the message written.
      Buffer.from(serialize(m))
      GrpcWritten.callbackFor(m)?.()
      if (m._tag === "SessionOutput") {
        received += m.data.length
        messages++
        return Queue.offer(incoming, { _tag: "SessionAck", sessionId: m.sessionId, pipe: m.pipe, bytes: m.data.length })
      }
      return m._tag === "SessionExit" ? Deferred.succeed(exited, undefined) : Effect.void
    }).pipe(Effect.asVoid)
  const cpu = process.cpuUsage()
  const started = Date.now()
  yield* Effect.forkScoped(
    AgentEngine.serve(
      { incoming: Stream.fromQueue(incoming), send },
      { window: 8 * 1024 * 1024, heartbeatInterval: 0, relaySilenceTimeout: "1 hour" }
    )
  )
  yield* Queue.offer(incoming, {
    _tag: "SessionOpen",
    sessionId: "0f8b6a7e-3c1d-4e5f-9a2b-1c3d4e5f6a7b",
    spec: {
      _tag: "Exec",
      argv: ["head", "-c", String(bytes), "/dev/zero"],
      shell: false,
      timeoutMs: 0,
      stdin: false,
      env: {}
    },
    caller: undefined
  })
  yield* Deferred.await(exited)
  const used = process.cpuUsage(cpu)
  const mb = received / 1e6
  return {
    bytes: received,
    messages,
    cpu_ms_per_mb: (used.user + used.system) / 1000 / mb,
    mb_per_s: mb / ((Date.now() - started) / 1000)
  }
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(ProcessRunner.layer))).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`)
    process.exit(result.bytes === bytes ? 0 : 1)
  },
  (error) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
