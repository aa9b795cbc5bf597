/**
 * Per-message cost of `@cmdop/grpc` against raw grpc-js: one process, a server and a client on 127.0.0.1, one bidi
 * call that echoes `n` messages of `size` bytes. Both sides use identity (de)serializers on Buffers, so the figure
 * is the bridge's cost, not protobuf's.
 *
 * With `MICRO_KIND=calls`, per-call cost instead: `n` bidi calls one after another, each the shape of an exec (one
 * message each way, the client's half-close, the status), so `n` counts calls and the CPU is per call. With
 * `MICRO_KIND=pingpong`, one call with one message in flight at a time (a keystroke and its echo): every read
 * waits for its message, as in an interactive session.
 *
 * Bundled by `bench/grpc-micro.mjs` and run as `node grpc-micro.mjs <raw|cmdop> <n> <size>`; prints
 * `{ "mode", "n", "size", "ms", "cpuMs" }` (cpuMs: user + system CPU of the process during the call).
 */
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as grpc from "@grpc/grpc-js"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

const [mode, nArg, sizeArg] = process.argv.slice(2)
const n = Number(nArg)
const size = Number(sizeArg)
if ((mode !== "raw" && mode !== "cmdop") || !(n > 0) || !(size >= 0)) {
  process.stderr.write("usage: grpc-micro raw|cmdop <n> <size>\n")
  process.exit(2)
}

const identity = (b: Buffer) => b
const Echo = {
  echo: {
    path: "/bench.Echo/Echo",
    requestStream: true,
    responseStream: true,
    originalName: "echo",
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity
  }
} as const

const payload = Buffer.alloc(size, 7)
/** `messages` (default) or `calls` (see the header). */
const kind =
  process.env.MICRO_KIND === "calls" || process.env.MICRO_KIND === "pingpong" ? process.env.MICRO_KIND : "messages"
// MICRO_GRPC_OPTIONS: extra grpc-js channel options (JSON) for both sides, e.g. '{"grpc.enable_retries":0}'.
const options = {
  "grpc.max_send_message_length": -1,
  "grpc.max_receive_message_length": -1,
  ...(JSON.parse(process.env.MICRO_GRPC_OPTIONS || "{}") as Record<string, number | string>)
}

interface Result {
  readonly ms: number
  readonly cpuMs: number
}

/** Times `run`, in wall and process CPU milliseconds. */
const measure = async (run: () => Promise<number>): Promise<Result> => {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const received = await run()
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  if (received !== n) throw new Error(`received ${received} of ${n}`)
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 }
}

/** grpc-js as its documentation shows it: `data` events, `write()` with `drain`. */
const raw = async (): Promise<Result> => {
  const server = new grpc.Server(options)
  server.addService(Echo as unknown as grpc.ServiceDefinition, {
    echo: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on("data", (m: Buffer) => {
        if (!call.write(m)) {
          call.pause()
          call.once("drain", () => call.resume())
        }
      })
      call.on("end", () => call.end())
    }
  })
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)))
  )
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options)
  const once = (count: number) =>
    new Promise<number>((resolve, reject) => {
      const call = client.makeBidiStreamRequest<Buffer, Buffer>(Echo.echo.path, identity, identity)
      let received = 0
      call.on("data", () => received++)
      call.on("error", reject)
      call.on("end", () => resolve(received))
      let sent = 0
      const pump = () => {
        while (sent < count) {
          sent++
          if (!call.write(payload)) return void call.once("drain", pump)
        }
        call.end()
      }
      pump()
    })
  /** `count` calls of one message each way, one after another; how many answered. */
  const calls = async (count: number) => {
    let answered = 0
    for (let i = 0; i < count; i++)
      answered += await new Promise<number>((resolve, reject) => {
        const call = client.makeBidiStreamRequest<Buffer, Buffer>(Echo.echo.path, identity, identity)
        let received = 0
        call.on("data", () => received++)
        call.on("error", reject)
        call.on("status", () => resolve(received))
        call.write(payload)
        call.end()
      })
    return answered
  }
  /** One call, `count` messages one at a time: each sent once the previous one came back. */
  const pingpong = (count: number) =>
    new Promise<number>((resolve, reject) => {
      const call = client.makeBidiStreamRequest<Buffer, Buffer>(Echo.echo.path, identity, identity)
      let received = 0
      call.on("data", () => {
        if (++received < count) call.write(payload)
        else call.end()
      })
      call.on("error", reject)
      call.on("end", () => resolve(received))
      call.write(payload)
    })
  const run = kind === "calls" ? calls : kind === "pingpong" ? pingpong : once
  await run(Math.min(n, 1000))
  const result = await measure(() => run(n))
  client.close()
  server.forceShutdown()
  return result
}

const cmdop = (): Promise<Result> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const server = yield* GrpcServer.make({
          host: "127.0.0.1",
          services: [GrpcServer.service(Echo, { echo: (requests) => requests })],
          channelOptions: options,
          shutdownTimeout: "100 millis"
        })
        const client = yield* GrpcClient.make(Echo, { address: server.address, channelOptions: options })
        const once = (count: number) =>
          Stream.runFold(client.bidi("echo", Stream.repeatValue(payload).pipe(Stream.take(count))), 0, (k) => k + 1)
        /** `count` calls of one message each way, one after another; how many answered. */
        // Read as the relay's clients read a call (`RelayClientGrpc`): the requests a `PullStream`, the answers
        // pulled in a plain loop (a `Stream.run*` would add the channel executor's ~1,000 steps a call).
        const one = Effect.scoped(
          Effect.flatMap(
            PullStream.toPull(client.bidi("echo", PullStream.prepend(payload, PullStream.empty))),
            (pull) => {
              let received = 0
              return Effect.as(
                PullStream.forEachChunkOfPull(pull, (chunk) =>
                  Effect.sync(() => {
                    received += Chunk.size(chunk)
                  })
                ),
                received
              ).pipe(Effect.map(() => received))
            }
          )
        )
        const calls = (count: number) =>
          Effect.gen(function* () {
            let answered = 0
            for (let i = 0; i < count; i++) answered += yield* one
            return answered
          })
        /** One call, `count` messages one at a time: each sent once the previous one came back. */
        const pingpong = (count: number) =>
          Effect.scoped(
            Effect.gen(function* () {
              const channel = yield* client.bidiChannel("echo")
              const pull = yield* PullStream.toPull(channel.responses)
              let received = 0
              for (let i = 0; i < count; i++) {
                yield* channel.send(payload)
                received += Chunk.size(yield* pull)
              }
              yield* channel.end
              return received
            })
          )
        const run = kind === "calls" ? calls : kind === "pingpong" ? pingpong : once
        yield* run(Math.min(n, 1000))
        return yield* Effect.promise(() => measure(() => Effect.runPromise(run(n))))
      })
    )
  )

;(mode === "raw" ? raw() : cmdop()).then(
  (result) => {
    process.stdout.write(JSON.stringify({ mode, n, size, ...result }) + "\n")
    process.exit(0)
  },
  (error) => {
    process.stderr.write(`grpc-micro: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
)
