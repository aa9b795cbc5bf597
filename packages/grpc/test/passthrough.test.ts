/**
 * `GrpcPassthrough` over real gRPC on loopback: a front server whose server-streaming handlers pass the answers of
 * the test server (the upstream) through as bytes. The client of the front must see exactly what a client of the
 * upstream sees — the messages, the status and its trailing metadata, a trailers-only failure — and a client that
 * stops reading must hold the upstream back (HTTP/2 flow control end to end), not make the front buffer.
 */
import * as grpc from "@grpc/grpc-js"
import { assert, describe, it } from "@effect/vitest"
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import * as GrpcPassthrough from "@cmdop/grpc/GrpcPassthrough"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import { GrpcStatusError, withPayload } from "@cmdop/grpc/GrpcStatusError"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as net from "node:net"
import { type CountRequest, setup, TestService } from "./fixtures/TestService.js"

/** Passes `request` to `path` upstream and its answers through to the front's client. */
const passOn =
  (upstream: GrpcPassthrough.Upstream, path: string, request: CountRequest): GrpcPassthrough.Passthrough =>
  (target) =>
    Effect.gen(function* () {
      const call = yield* upstream.call(path, { "x-test": "front" }, Buffer.from(JSON.stringify(request)))
      call.end()
      const first = yield* upstream.first(call)
      if (first._tag === "End") return first.ending.ok ? undefined : yield* Effect.fail(first.ending.error)
      const ending = yield* Effect.async<GrpcPassthrough.Ending>((resume) =>
        call.listen(
          (chunk) => {
            if (target.downstream.write(chunk)) return true
            target.downstream.onDrain(() => call.resume())
            return false
          },
          (end) => resume(Effect.succeed(end))
        )
      )
      if (!ending.ok) return yield* Effect.fail(ending.error)
    })

/** The test server, a front passing its `count` and `ticks` through, and a client of each. */
const world = Effect.gen(function* () {
  const back = yield* setup()
  const upstream = GrpcPassthrough.upstream(back.server.address)
  yield* Effect.addFinalizer(() => Effect.sync(() => upstream.close()))
  const unread = () => Stream.dieMessage("a passed-through stream is not read")
  const front = yield* GrpcServer.make({
    host: "127.0.0.1",
    port: 0,
    services: [
      GrpcServer.service(
        { count: TestService.count, ticks: TestService.ticks },
        {
          count: (request) =>
            GrpcPassthrough.withDownstream(unread(), passOn(upstream, TestService.count.path, request)),
          ticks: (request) =>
            GrpcPassthrough.withDownstream(unread(), passOn(upstream, TestService.ticks.path, request))
        }
      )
    ]
  })
  const client = yield* GrpcClient.make(TestService, { address: front.address })
  return { back, client }
})

describe("GrpcPassthrough", () => {
  it.scopedLive("answers pass through unchanged: every message, in order, then OK", () =>
    Effect.gen(function* () {
      const { back, client } = yield* world
      const request = { count: 3000, padding: 100 }
      const through = Chunk.toReadonlyArray(yield* Stream.runCollect(client.serverStream("count", request)))
      const direct = Chunk.toReadonlyArray(yield* Stream.runCollect(back.client.serverStream("count", request)))
      assert.strictEqual(through.length, 3000)
      assert.deepStrictEqual(through, direct)
    })
  )

  it.scopedLive("a failure after answers, and a trailers-only one, reach the client with their status", () =>
    Effect.gen(function* () {
      const { client } = yield* world
      const seen: Array<number> = []
      const late = yield* client.serverStream("count", { count: 5, padding: -1 }).pipe(
        Stream.runForEach((tick) => Effect.sync(() => seen.push(tick.n))),
        Effect.either
      )
      assert.deepStrictEqual(seen, [1, 2, 3, 4, 5])
      assert.isTrue(Either.isLeft(late))
      if (Either.isLeft(late)) {
        assert.strictEqual(late.left.code, grpc.status.RESOURCE_EXHAUSTED)
        assert.strictEqual(late.left.details, "no more")
      }
      const early = yield* Effect.either(Stream.runCollect(client.serverStream("count", { count: 0, padding: -1 })))
      assert.isTrue(Either.isLeft(early) && early.left.code === grpc.status.RESOURCE_EXHAUSTED)
    })
  )

  it.scopedLive("a status with details and a typed payload passes as sent", () =>
    Effect.gen(function* () {
      // The upstream's own parsing of the trailers, checked against a status the front makes of them.
      const back = yield* setup()
      const upstream = GrpcPassthrough.upstream(back.server.address)
      yield* Effect.addFinalizer(() => Effect.sync(() => upstream.close()))
      const expected = withPayload(grpc.status.PERMISSION_DENIED, "not yours: 100% «sure»", { reason: "Forbidden" })
      const call = yield* upstream.call(
        TestService.fail.path,
        {},
        Buffer.from(
          JSON.stringify({ code: expected.code, details: expected.details, payload: { reason: "Forbidden" } })
        )
      )
      call.end()
      const first = yield* upstream.first(call)
      assert.strictEqual(first._tag, "End")
      if (first._tag !== "End" || first.ending.ok) return
      assert.deepStrictEqual(first.ending.error, expected)
    })
  )

  it.scopedLive("a client that stops reading holds the upstream back: the front buffers nothing", () =>
    Effect.gen(function* () {
      const { back, client } = yield* world
      const ticks = yield* Stream.toPull(client.serverStream("ticks", { count: 0, padding: 10_000 }))
      yield* ticks
      // ~10 KB a tick: the front's and the client's windows (8 MiB each) and buffers hold some, then the upstream
      // waits. Without flow control it would produce without end.
      yield* Effect.sleep("1 second")
      const held = yield* Ref.get(back.probe.produced)
      yield* Effect.sleep("500 millis")
      const later = yield* Ref.get(back.probe.produced)
      assert.isBelow(later, 10_000, `the upstream produced ${later} ticks for a client that read one`)
      assert.strictEqual(later, held, "the upstream went on producing while nobody read")
    })
  )

  it.scopedLive("an upstream that cannot be reached fails the call UNAVAILABLE, at once", () =>
    Effect.gen(function* () {
      const upstream = GrpcPassthrough.upstream("127.0.0.1:1")
      yield* Effect.addFinalizer(() => Effect.sync(() => upstream.close()))
      const call = yield* upstream.call(TestService.count.path, {}, Buffer.from("{}"))
      const first = yield* upstream.first(call).pipe(Effect.timeout("5 seconds"))
      assert.isTrue(first._tag === "End" && !first.ending.ok && first.ending.error.code === grpc.status.UNAVAILABLE)
      assert.instanceOf(first._tag === "End" && !first.ending.ok ? first.ending.error : undefined, GrpcStatusError)
    })
  )

  it.scopedLive("a connection lost mid-call (the upstream's node killed) fails it UNAVAILABLE, not CANCELLED", () =>
    Effect.gen(function* () {
      const back = yield* setup()
      // A TCP hop to the upstream that can be cut at once, as the kernel does when the node is killed.
      const [host, port] = back.server.address.split(":") as [string, string]
      const sockets = new Set<net.Socket>()
      const hop = net.createServer((inbound) => {
        const outbound = net.connect(Number(port), host)
        for (const socket of [inbound, outbound]) {
          sockets.add(socket)
          socket.on("error", () => {})
        }
        inbound.pipe(outbound).pipe(inbound)
      })
      yield* Effect.async<void>((resume) => {
        hop.listen(0, "127.0.0.1", () => resume(Effect.void))
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => void hop.close()))
      const upstream = GrpcPassthrough.upstream(`127.0.0.1:${(hop.address() as net.AddressInfo).port}`)
      yield* Effect.addFinalizer(() => Effect.sync(() => upstream.close()))
      const call = yield* upstream.call(
        TestService.ticks.path,
        {},
        Buffer.from(JSON.stringify({ count: 0, padding: 10 }))
      )
      call.end()
      assert.strictEqual((yield* upstream.first(call))._tag, "Data")
      const ending = yield* Effect.async<GrpcPassthrough.Ending>((resume) => {
        call.listen(
          () => true,
          (end) => resume(Effect.succeed(end))
        )
        for (const socket of sockets) socket.destroy()
      }).pipe(Effect.timeout("5 seconds"))
      assert.isFalse(ending.ok)
      if (ending.ok) return
      assert.strictEqual(ending.error.code, grpc.status.UNAVAILABLE, ending.error.details)
      assert.include(ending.error.details, "connection to the node was lost")
    })
  )
})
