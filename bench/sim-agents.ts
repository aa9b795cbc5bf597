/**
 * Many idle agents from one process, for measuring what an idle agent costs the relay. Each simulated agent speaks
 * the real wire protocol: its own gRPC channel (a local subchannel pool, so one TCP/HTTP-2 connection per agent, as
 * with real agents), `AgentService.Connect` with the workspace key as bearer, `Hello` with a fresh identity, then
 * `Welcome`; after that it only sends heartbeats at the interval Welcome asks for and drains what the relay sends.
 * Sessions opened on it are never answered (the benchmark opens none).
 *
 * Bundled on the fly by `bench/run.mjs` and run as `node sim-agents.mjs <server> <api key> <count> [concurrency]`.
 * Once every agent of a batch got its Welcome (or failed), prints one JSON line
 * `{ "connected", "failed", "ms", "errors", "total", "rss" }`. The first batch is `<count>` agents; each line read
 * from stdin then adds that many more. All stay connected until stdin ends (or the process is killed).
 *
 * Every agent comes from 127.0.0.1, as agents behind a TCP load balancer do: past 1,024 the relay must run with
 * `relay serve --max-connections-per-source` above the count (a refused connection is reported with that hint),
 * and this process needs a descriptor per agent: a batch that would pass its limit fails at once, saying so.
 */
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import { AgentServiceService, Heartbeat, Hello } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { randomBytes, randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as readline from "node:readline"

const [server, apiKey, countArg, concurrencyArg] = process.argv.slice(2)
if (server === undefined || apiKey === undefined || countArg === undefined) {
  process.stderr.write("usage: sim-agents <server> <api key> <count> [concurrency]\n")
  process.exit(2)
}
const count = Number(countArg)
const concurrency = Number(concurrencyArg ?? 16)
const metadata = { authorization: `Bearer ${apiKey}` }

/** This process's soft limit on open files (Linux), or undefined where the platform does not say. */
const nofile = (): number | undefined => {
  try {
    const line = fs
      .readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"))
    const soft = line?.split(/\s{2,}/)[1]
    return soft === "unlimited" ? Infinity : Number(soft) || undefined
  } catch {
    return undefined
  }
}

/** Descriptors kept for everything but the agents' sockets (stdio, the event loop, DNS). */
const FD_SPARE = 64

/**
 * A connection the relay closed on accept looks like this (UNAVAILABLE): its per-source cap, or (on a machine too
 * busy for the relay to read the socket within its 10 s) its silent-socket timer.
 */
const UNAVAILABLE = 14
const REFUSED_HINT =
  " (closed by the relay? every simulated agent comes from 127.0.0.1: past 1,024 it needs relay serve --max-connections-per-source; or it was too busy to read the socket within 10 s)"

/** A one-line description of a failure (a status error, possibly inside the Option a stream pull fails with). */
const describe = (e: unknown): string => {
  const inner = Option.isOption(e) ? Option.getOrUndefined(e) : e
  if (inner === undefined) return "the relay ended the stream before Welcome"
  const status = inner as { code?: number; details?: string; message?: string }
  return status.code !== undefined
    ? `status ${status.code}: ${status.details}${status.code === UNAVAILABLE ? REFUSED_HINT : ""}`
    : String(status.message ?? inner)
}

/** One agent: connected and greeted when this succeeds; its calls live in the enclosing scope. */
const connectOne = (i: number, id: { readonly machineId: string; readonly machineSecret: string }) =>
  Effect.gen(function* () {
    const client = yield* GrpcClient.make(AgentServiceService, {
      address: server,
      channelOptions: { "grpc.use_local_subchannel_pool": 1 }
    })
    const channel = yield* client.bidiChannel("connect", { metadata })
    yield* channel.send({
      kind: {
        $case: "hello",
        // fromPartial: fields added to Hello later get their defaults (an idle agent has no PTY sessions).
        value: Hello.fromPartial({
          identity: {
            machineId: id.machineId,
            machineSecret: id.machineSecret,
            hostname: `sim-${i}`,
            name: `sim-${i}`,
            os: `${process.platform} ${os.release()}`,
            agentVersion: "bench-sim"
          },
          window: 256 * 1024
        })
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
          .send({ kind: { $case: "heartbeat", value: Heartbeat.fromPartial({ at: Date.now() }) } })
          .pipe(Effect.repeat(Schedule.spaced(every)), Effect.delay(every))
      )
    )
  }).pipe(
    // Generous: on a machine busy with other work a relay taking thousands of agents answers slowly, and a real
    // agent would keep waiting (then retry); the figure is what the relay holds, not how fast it greets.
    Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => `sim-${i}: no Welcome within 60 s` }),
    Effect.mapError((e) => (typeof e === "string" ? e : `sim-${i}: ${describe(e)}`))
  )

/** Connects agents `from` .. `from + n - 1`; one JSON line with the outcome. */
const batch = (from: number, n: number) =>
  Effect.gen(function* () {
    const limit = nofile()
    if (limit !== undefined && from + n + FD_SPARE > limit)
      return yield* Effect.fail(
        new Error(
          `${from + n} agents need ${from + n + FD_SPARE} descriptors, the limit is ${limit}: raise it (ulimit -n) or simulate fewer`
        )
      )
    const t0 = performance.now()
    const results = yield* Effect.forEach(
      Array.from({ length: n }, (_, i) => from + i),
      // A real agent whose connection fails tries again: so does each simulated one, twice, before it counts as
      // failed (on a busy machine the relay may close a socket it had no time to read).
      // The same identity on every try: a fresh one would find its hostname taken by the first.
      (i) => {
        const id = { machineId: randomUUID(), machineSecret: randomBytes(32).toString("base64url") }
        return Effect.either(Effect.retry(connectOne(i, id), { times: 2 }))
      },
      { concurrency }
    )
    const errors = results.filter(Either.isLeft).map((e) => e.left)
    return {
      connected: n - errors.length,
      failed: errors.length,
      ms: performance.now() - t0,
      errors: errors.slice(0, 5)
    }
  })

const program = Effect.gen(function* () {
  let next = 0
  let connected = 0
  const report = (result: { connected: number }) =>
    Effect.sync(() => {
      connected += result.connected
      process.stdout.write(JSON.stringify({ ...result, total: connected, rss: process.memoryUsage().rss }) + "\n")
    })
  const first = yield* batch(next, count)
  next += count
  yield* report(first)
  // Each further line on stdin is a count of agents to add; the end of stdin ends the process.
  const lines = Stream.async<string>((emit) => {
    const rl = readline.createInterface({ input: process.stdin })
    rl.on("line", (line) => void emit.single(line))
    rl.on("close", () => void emit.end())
    return Effect.sync(() => rl.close())
  })
  yield* lines.pipe(
    Stream.map((line) => Number(line.trim())),
    Stream.filter((n) => Number.isInteger(n) && n > 0),
    Stream.runForEach((n) =>
      batch(next, n).pipe(
        Effect.tap(() => Effect.sync(() => void (next += n))),
        Effect.flatMap(report)
      )
    )
  )
})

Effect.runPromise(Effect.scoped(program)).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`sim-agents: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
)
