/**
 * The in-process half of the exec benchmark: one `RelayClient` over gRPC, reused for every call, so a figure is the
 * cost of one exec round trip (relay + agent + remote process) without any process start-up on the client side.
 *
 * Bundled on the fly by `bench/run.mjs` and run as `node warm-exec.mjs <mode> <server> <api key> <machine> <arg>`:
 *
 * - `latency <n>`: `WARMUP` calls of `true`, then `n` timed ones; prints `{ "samples": [ms, …], "warmup": [ms, …] }`.
 * - `throughput <bytes>`: one `head -c <bytes> /dev/zero`, counting stdout bytes as they arrive; prints
 *   `{ "bytes", "ms", "chunks" }`.
 *
 * The exec's events are read with `PullStream.runForEach` (by the stream's pull), as the CLI reads them: reading
 * them with `Stream.runForEach` costs Effect's stream machinery ~700 more runtime steps per call (a sink, a pipe and
 * their executors), which is the reader's cost, not the round trip's. `BENCH_WARM_READER=stream` measures that way.
 *
 * Any failure (non-zero exit, relay error) prints one line to stderr and exits 1.
 */
import * as PullStream from "@cmdop/grpc/PullStream"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"

const [mode, server, apiKey, machine, arg] = process.argv.slice(2)
if (mode === undefined || server === undefined || apiKey === undefined || machine === undefined || arg === undefined) {
  process.stderr.write("usage: warm-exec latency|throughput <server> <api key> <machine> <n|bytes>\n")
  process.exit(2)
}

/**
 * `BENCH_WARM_WARMUP` calls before the timed ones (timed too, and printed as `warmup`): the relay and the agent
 * are fresh processes, and V8 takes a few hundred calls to compile their exec path — a relay in service has.
 */
const WARMUP = Number(process.env.BENCH_WARM_WARMUP ?? 500)

/**
 * `BENCH_WARM_GAP_MS`: a pause before each timed call (default 0: back to back). Calls a person or a script makes
 * have gaps; back to back, whatever an agent does between two calls (the next warm shell) lands on the next one.
 */
const GAP_MS = Number(process.env.BENCH_WARM_GAP_MS ?? 0)

/** How the events are read: by their pull (the CLI's way, the default) or with `Stream.runForEach`. */
const readEvents = process.env.BENCH_WARM_READER === "stream" ? Stream.runForEach : PullStream.runForEach

const program = Effect.gen(function* () {
  const client = yield* RelayClientGrpc.make({ server, apiKey: Redacted.make(apiKey) })

  /** Runs one command to its end; returns the stdout byte count, failing unless it exits 0. */
  const run = (argv: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      let bytes = 0
      let chunks = 0
      let exit: { exitCode: number; error?: string } | undefined
      yield* readEvents(client.exec({ machine, argv }), (event) =>
        Effect.sync(() => {
          if (event._tag === "Stdout") {
            bytes += event.data.byteLength
            chunks++
          } else if (event._tag === "Exit") exit = event
        })
      )
      if (exit === undefined || exit.exitCode !== 0)
        return yield* Effect.fail(`${argv.join(" ")}: exit ${exit?.exitCode ?? "missing"} ${exit?.error ?? ""}`)
      return { bytes, chunks }
    })

  if (mode === "latency") {
    const n = Number(arg)
    const warmup: Array<number> = []
    for (let i = 0; i < WARMUP; i++) {
      const t0 = performance.now()
      yield* run(["true"])
      warmup.push(performance.now() - t0)
    }
    const samples: Array<number> = []
    for (let i = 0; i < n; i++) {
      if (GAP_MS > 0) yield* Effect.sleep(GAP_MS)
      const t0 = performance.now()
      yield* run(["true"])
      samples.push(performance.now() - t0)
    }
    return { samples, warmup }
  }
  if (mode === "throughput") {
    const t0 = performance.now()
    const { bytes, chunks } = yield* run(["head", "-c", String(Number(arg)), "/dev/zero"])
    return { bytes, ms: performance.now() - t0, chunks }
  }
  return yield* Effect.fail(`unknown mode ${mode}`)
})

Effect.runPromise(Effect.scoped(program)).then(
  (result) => {
    process.stdout.write(JSON.stringify(result) + "\n")
    process.exit(0)
  },
  (error) => {
    process.stderr.write(`warm-exec: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
)
