/**
 * Many idle agents from one process, for measuring what an idle agent costs the relay. Each simulated agent speaks
 * the real wire protocol: its own gRPC channel (a local subchannel pool, so one TCP/HTTP-2 connection per agent, as
 * with real agents), `AgentService.Connect` with the workspace key as bearer, `Hello` with a fresh identity, then
 * `Welcome`; after that it only sends heartbeats at the interval Welcome asks for and drains what the relay sends.
 * Sessions opened on it are never answered (the benchmark opens none).
 *
 * Bundled on the fly by `bench/run.mjs` and run as `node sim-agents.mjs <server> <api key> <count> [concurrency]`.
 * Once every agent got its Welcome (or failed), prints one JSON line
 * `{ "connected", "failed", "ms", "rss", "errors" }` and stays connected until killed.
 */
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import { AgentServiceService } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { randomBytes, randomUUID } from "node:crypto"
import * as os from "node:os"

const [server, apiKey, countArg, concurrencyArg] = process.argv.slice(2)
if (server === undefined || apiKey === undefined || countArg === undefined) {
  process.stderr.write("usage: sim-agents <server> <api key> <count> [concurrency]\n")
  process.exit(2)
}
const count = Number(countArg)
const concurrency = Number(concurrencyArg ?? 16)
const metadata = { authorization: `Bearer ${apiKey}` }

/** One agent: connected and greeted when this succeeds; its calls live in the enclosing scope. */
const connectOne = (i: number) =>
  Effect.gen(function* () {
    const client = yield* GrpcClient.make(AgentServiceService, {
      address: server,
      channelOptions: { "grpc.use_local_subchannel_pool": 1 }
    })
    const channel = yield* client.bidiChannel("connect", { metadata })
    yield* channel.send({
      kind: {
        $case: "hello",
        value: {
          identity: {
            machineId: randomUUID(),
            machineSecret: randomBytes(32).toString("base64url"),
            hostname: `sim-${i}`,
            name: `sim-${i}`,
            os: `${process.platform} ${os.release()}`,
            agentVersion: "bench-sim"
          },
          window: 256 * 1024
        }
      }
    })
    const pull = yield* Stream.toPull(channel.responses)
    let first = yield* pull
    while (Chunk.isEmpty(first)) first = yield* pull
    const head = Chunk.unsafeHead(first)
    if (head.kind?.$case !== "welcome") return yield* Effect.fail(`sim-${i}: expected Welcome, got ${head.kind?.$case}`)
    const every = Duration.seconds(head.kind.value.heartbeatSeconds > 0 ? head.kind.value.heartbeatSeconds : 30)
    // Idle from here on: drain the relay's messages, heartbeat like a real agent.
    yield* Effect.forkScoped(Effect.ignore(Effect.forever(pull)))
    yield* Effect.forkScoped(
      Effect.ignore(
        channel
          .send({ kind: { $case: "heartbeat", value: { at: Date.now() } } })
          .pipe(Effect.repeat(Schedule.spaced(every)), Effect.delay(every))
      )
    )
  }).pipe(
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => `sim-${i}: no Welcome within 20 s` }),
    Effect.mapError((e) => (typeof e === "string" ? e : `sim-${i}: ${String((e as { message?: string }).message ?? e)}`))
  )

const program = Effect.gen(function* () {
  const t0 = performance.now()
  const results = yield* Effect.forEach(
    Array.from({ length: count }, (_, i) => i),
    (i) => Effect.either(connectOne(i)),
    { concurrency }
  )
  const errors = results.filter(Either.isLeft).map((e) => e.left)
  process.stdout.write(
    JSON.stringify({
      connected: count - errors.length,
      failed: errors.length,
      ms: performance.now() - t0,
      rss: process.memoryUsage().rss,
      errors: errors.slice(0, 5)
    }) + "\n"
  )
  return yield* Effect.never
})

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  process.stderr.write(`sim-agents: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
