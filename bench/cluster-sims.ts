/**
 * Many idle agents that roam a cluster, for `bench/cluster.mjs`. Each simulated agent speaks the real agent link
 * (`AgentService.Connect`, its own gRPC channel and TCP connection, `Hello` with a fixed identity, `Welcome`, then
 * only heartbeats) and, like the real daemon, is given every node (`a,b,c`): it starts on node `i mod n` and, when
 * its stream ends or a connection fails, waits the daemon's backoff (exponential with full jitter, 0.5 s doubling
 * to 30 s, reset after a handshake: `@cmdop/agent/Backoff`) and tries the next node of the list.
 *
 * Run as `node cluster-sims.mjs <servers a,b,c> <api key> <count> <first index> [concurrency]`. Prints JSON lines:
 * every 100 ms while anything changes `{ "at": epoch ms, "online": n, "connects": total handshakes so far,
 * "failures": total failed attempts }`, and `{ "ready": n, "ms" }` once the first connection of every agent was
 * tried.
 */
import * as Backoff from "@cmdop/agent/Backoff"
import type * as AgentLink from "@cmdop/domain/AgentLink"
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import * as AgentService from "@cmdop/protocol/AgentService"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { randomBytes, randomUUID } from "node:crypto"

const [serversArg, apiKey, countArg, firstArg, concurrencyArg] = process.argv.slice(2)
if (serversArg === undefined || apiKey === undefined || countArg === undefined || firstArg === undefined) {
  process.stderr.write("usage: cluster-sims <a,b,c> <api key> <count> <first index> [concurrency]\n")
  process.exit(2)
}
const servers = serversArg.split(",")
const count = Number(countArg)
const first = Number(firstArg)
const concurrency = Number(concurrencyArg ?? 32)
const metadata = { authorization: `Bearer ${apiKey}` }

let online = 0
let connects = 0
let failures = 0
/** Why attempts failed or streams ended, by message (the first 80 characters), counted. */
const reasons = new Map<string, number>()
const note = (why: unknown) => {
  // A pull fails with `Option<E>`: the error itself is inside.
  const error = (why as { _tag?: string; value?: unknown })?._tag === "Some" ? (why as { value: unknown }).value : why
  const text = String((error as { message?: string })?.message ?? error).slice(0, 120)
  reasons.set(text, (reasons.get(text) ?? 0) + 1)
}

/** One connection: resolves `welcomed` at the handshake, then lasts until the relay's stream ends or fails. */
const connectOnce = (address: string, hello: AgentLink.Hello, welcomed: Deferred.Deferred<void>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const client = yield* GrpcClient.make(AgentService.definition, {
        address,
        channelOptions: { "grpc.use_local_subchannel_pool": 1 }
      })
      const channel = yield* client.bidiChannel("connect", { metadata })
      yield* channel.send(hello)
      const pull = yield* Stream.toPull(channel.responses)
      const welcome = yield* Effect.gen(function* () {
        let head = yield* pull
        while (Chunk.isEmpty(head)) head = yield* pull
        return Chunk.unsafeHead(head)
      }).pipe(Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => "no Welcome within 60 s" }))
      if (welcome._tag !== "Welcome") return yield* Effect.fail("no Welcome")
      connects++
      online++
      yield* Deferred.succeed(welcomed, undefined)
      const beat = Effect.suspend(() => channel.send({ _tag: "Heartbeat", at: Date.now() }))
      yield* Effect.forkScoped(Effect.ignore(beat.pipe(Effect.repeat(Schedule.spaced("30 seconds")))))
      yield* Effect.forever(pull).pipe(
        Effect.catchAll((end) => Effect.sync(() => note(end._tag === "None" ? "stream ended" : end.value))),
        Effect.ensuring(Effect.sync(() => online--))
      )
    })
  ).pipe(
    Effect.catchAll((e) =>
      Effect.sync(() => {
        failures++
        note(e)
      })
    )
  )

/** Agent `i` for ever: connect, serve until the stream goes, back off, next node. */
const agent = (i: number, ready: Deferred.Deferred<void>) =>
  Effect.gen(function* () {
    const hello: AgentLink.Hello = {
      _tag: "Hello",
      identity: {
        machineId: randomUUID(),
        machineSecret: Redacted.make(randomBytes(32).toString("base64url")),
        hostname: `roam-${i}`,
        name: `roam-${i}`,
        os: "linux",
        agentVersion: "bench-cluster-sim"
      },
      window: 256 * 1024,
      ptySessions: []
    }
    const backoff = yield* Backoff.make()
    let at = i % servers.length
    for (let attempt = 0; ; attempt++) {
      const welcomed = yield* Deferred.make<void>()
      yield* Effect.forkDaemon(
        Deferred.await(welcomed).pipe(
          Effect.zipRight(backoff.reset),
          Effect.zipRight(Deferred.succeed(ready, undefined))
        )
      )
      yield* connectOnce(servers[at]!, hello, welcomed)
      if (attempt === 0) yield* Deferred.succeed(ready, undefined)
      at = (at + 1) % servers.length
      yield* backoff.next
    }
  })

const program = Effect.gen(function* () {
  const t0 = performance.now()
  // Progress from the start: the driver draws the connection curve from these lines.
  let last = ""
  yield* Effect.sync(() => {
    const line = JSON.stringify({ online, connects, failures })
    if (line !== last)
      process.stdout.write(
        `${JSON.stringify({ at: Date.now(), online, connects, failures, reasons: Object.fromEntries(reasons) })}\n`
      )
    last = line
  }).pipe(Effect.repeat(Schedule.spaced("100 millis")), Effect.forkDaemon)
  const readies = yield* Effect.forEach(
    Array.from({ length: count }, (_, k) => first + k),
    (i) =>
      Effect.gen(function* () {
        const ready = yield* Deferred.make<void>()
        yield* Effect.forkDaemon(agent(i, ready))
        yield* Deferred.await(ready)
      }),
    { concurrency }
  )
  process.stdout.write(`${JSON.stringify({ ready: readies.length, online, ms: performance.now() - t0 })}\n`)
  return yield* Effect.never
})

Effect.runPromise(program).catch((error) => {
  process.stderr.write(`cluster-sims: ${String(error)}\n`)
  process.exit(1)
})
