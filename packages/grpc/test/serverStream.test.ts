import * as grpc from "@grpc/grpc-js"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import { settle } from "./fixtures/settle.js"
import { setup } from "./fixtures/TestService.js"

describe("server streaming", () => {
  it.scopedLive("delivers 10_000 messages in order, then ends", () =>
    Effect.gen(function* () {
      const { client } = yield* setup()
      const ticks = yield* Stream.runCollect(client.serverStream("count", { count: 10_000, padding: 0 }))
      assert.strictEqual(Chunk.size(ticks), 10_000)
      let expected = 1
      for (const tick of ticks) assert.strictEqual(tick.n, expected++)
    })
  )

  it.scopedLive("a failure after some messages delivers them, then fails with the status", () =>
    Effect.gen(function* () {
      const { client } = yield* setup()
      const received: Array<number> = []
      const result = yield* client.serverStream("count", { count: 5, padding: -1 }).pipe(
        Stream.runForEach((tick) => Effect.sync(() => received.push(tick.n))),
        Effect.either
      )
      assert.deepStrictEqual(received, [1, 2, 3, 4, 5])
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) {
        assert.strictEqual(result.left.code, grpc.status.RESOURCE_EXHAUSTED)
        assert.strictEqual(result.left.details, "no more")
      }
    })
  )

  it.live("a consumer that stops pulling stops the server (bounded buffering)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { client, probe } = yield* setup()
        const pull = yield* Stream.toPull(client.serverStream("ticks", { count: 0, padding: 100_000 }))
        let pulled = 0
        while (pulled < 10) pulled += Chunk.size(yield* pull)
        // The server runs ahead until flow control stops it: the count settles, and stays where it settled.
        const ahead = (yield* settle(Ref.get(probe.produced))) - pulled
        const later = (yield* settle(Ref.get(probe.produced))) - pulled
        // HTTP/2 flow control (8 MiB windows) plus the stream buffers: ~200 messages of 100 KB, not thousands.
        assert.isBelow(ahead, 500)
        assert.strictEqual(later, ahead)
        // Pulling again resumes the server.
        while (pulled < ahead + 50) pulled += Chunk.size(yield* pull)
        assert.isAbove(yield* Ref.get(probe.produced), ahead + 50)
      })
    )
  )

  it.scopedLive("interrupting the consumer cancels the call and interrupts the server's stream", () =>
    Effect.gen(function* () {
      const { client, probe } = yield* setup()
      const fiber = yield* client.serverStream("ticks", { count: 0, padding: 0 }).pipe(Stream.runDrain, Effect.fork)
      yield* Deferred.await(probe.started)
      yield* Fiber.interrupt(fiber)
      const stopped = yield* Deferred.await(probe.stopped).pipe(Effect.timeout("2 seconds"))
      assert.deepStrictEqual(stopped, { method: "/test.Test/Ticks", cancelled: true })
    })
  )

  it.scopedLive("taking a prefix cancels the rest", () =>
    Effect.gen(function* () {
      const { client, probe } = yield* setup()
      const first = yield* Stream.runCollect(Stream.take(client.serverStream("ticks", { count: 0, padding: 0 }), 3))
      assert.deepStrictEqual(Chunk.toReadonlyArray(Chunk.map(first, (t) => t.n)), [1, 2, 3])
      const stopped = yield* Deferred.await(probe.stopped).pipe(Effect.timeout("2 seconds"))
      assert.isTrue(stopped.cancelled)
    })
  )

  it.scopedLive(
    "a call stopped at its final answer is left to end, and cancelled if it has not within 5 s",
    () =>
      Effect.gen(function* () {
        const { client, probe } = yield* setup()
        // `ticks` never ends: the reader stops at the answer it was told is the last, the call lingers, then goes.
        const first = yield* Stream.runCollect(
          client.serverStream("ticks", { count: 0, padding: 0 }, { isLast: (m) => m.n === 1 }).pipe(Stream.take(1))
        )
        assert.deepStrictEqual(Chunk.toReadonlyArray(Chunk.map(first, (m) => m.n)), [1])
        const early = yield* Deferred.poll(probe.stopped)
        assert.isTrue(early._tag === "None", "the server's stream is still running right after the reader stopped")
        const stopped = yield* Deferred.await(probe.stopped).pipe(Effect.timeout("8 seconds"))
        assert.deepStrictEqual(stopped, { method: "/test.Test/Ticks", cancelled: true })
      }),
    15_000
  )
})
