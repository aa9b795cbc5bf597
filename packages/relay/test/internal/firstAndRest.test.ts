import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as PullStream from "@cmdop/grpc/PullStream"
import { firstAndPullWithin, firstAndRest, within } from "../../src/internal/firstAndRest.js"
import * as Outbox from "../../src/internal/outbox.js"

describe("firstAndRest", () => {
  it.effect.prop(
    "the first element and the rest are the whole stream, whatever its chunks",
    [FastCheck.array(FastCheck.integer(), { maxLength: 50 }), FastCheck.integer({ min: 1, max: 8 })],
    ([items, chunkSize]) =>
      Effect.scoped(
        Effect.gen(function* () {
          const [first, rest] = yield* firstAndRest(Stream.fromIterable(items).pipe(Stream.rechunk(chunkSize)))
          const tail = Chunk.toReadonlyArray(yield* Stream.runCollect(rest))
          assert.deepStrictEqual(Option.isSome(first) ? [first.value, ...tail] : tail, items)
          assert.strictEqual(Option.isNone(first), items.length === 0)
        })
      )
  )

  it.scoped("skips empty chunks before the first element", () =>
    Effect.gen(function* () {
      const [first, rest] = yield* firstAndRest(Stream.fromChunks(Chunk.empty<number>(), Chunk.make(1, 2)))
      assert.deepStrictEqual(first, Option.some(1))
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Stream.runCollect(rest)), [2])
    })
  )

  it.scoped("reads no further than the first chunk until the rest is pulled", () =>
    Effect.gen(function* () {
      let pulled = 0
      const counted = Stream.make(1, 2, 3).pipe(
        Stream.rechunk(1),
        Stream.tap(() => Effect.sync(() => pulled++))
      )
      const [, rest] = yield* firstAndRest(counted)
      assert.strictEqual(pulled, 1)
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Stream.runCollect(rest)), [2, 3])
      assert.strictEqual(pulled, 3)
    })
  )

  it.scoped("a failure before the first element fails; one after it fails the rest", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* Effect.flip(firstAndRest(Stream.fail("early"))), "early")
      const [first, rest] = yield* firstAndRest(Stream.concat(Stream.make(1), Stream.fail("late")))
      assert.deepStrictEqual(first, Option.some(1))
      assert.deepStrictEqual(yield* Effect.flip(Stream.runDrain(rest)), "late")
    })
  )
})

describe("within", () => {
  it.live("gives what the effect gives (success or failure) when it completes in time", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* within(Effect.succeed(1), 60_000, () => "late"), 1)
      assert.strictEqual(yield* Effect.flip(within(Effect.fail("no"), 60_000, () => "late")), "no")
      // Completing after a suspension (not in the same tick) is still in time.
      assert.strictEqual(yield* within(Effect.as(Effect.yieldNow(), 2), 60_000, () => "late"), 2)
    })
  )

  it.live("fails with onTimeout once the time has passed, and interrupts the effect", () =>
    Effect.gen(function* () {
      let interrupted = false
      const never = Effect.onInterrupt(Effect.never, () => Effect.sync(() => void (interrupted = true)))
      assert.strictEqual(yield* Effect.flip(within(never, 20, () => "late")), "late")
      assert.isTrue(interrupted)
    })
  )

  it.live("interrupting the caller interrupts the effect", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const stopped = yield* Deferred.make<void>()
      const waiting = Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
        Effect.onInterrupt(() => Deferred.succeed(stopped, undefined))
      )
      const caller = yield* Effect.fork(within(waiting, 60_000, () => "late"))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(caller)
      yield* Deferred.await(stopped)
    })
  )
})

/** A call's start message within a deadline: on a parking pull (the gRPC reader, the outbox) and on any stream. */
describe("firstAndPullWithin", () => {
  it.scopedLive("a parking stream whose first message comes in time: it, the rest of its chunk, and the rest", () =>
    Effect.gen(function* () {
      const buffered = Outbox.make<string, never>()
      buffered.push("start")
      buffered.push("a")
      const [head, rest] = yield* firstAndPullWithin(buffered.stream, 2_000, () => "late")
      assert.deepStrictEqual([head, Chunk.toReadonlyArray(rest)], [Option.some("start"), ["a"]])
      // Waited for: the push wakes the reader at once, with what is there then.
      const outbox = Outbox.make<string, never>()
      setTimeout(() => outbox.push("start"), 30)
      const [first, more, pull] = yield* firstAndPullWithin(outbox.stream, 2_000, () => "late")
      assert.deepStrictEqual([first, Chunk.toReadonlyArray(more)], [Option.some("start"), []])
      outbox.push("b")
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* pull), ["b"])
      // Long after the deadline would have been: the rest waits as long as it takes, no late timer fires.
      yield* Effect.sleep("2200 millis")
      outbox.push("c")
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* pull), ["c"])
    })
  )

  it.scopedLive("a parking stream that sends nothing fails with the timeout's error, by its own timer", () =>
    Effect.gen(function* () {
      const outbox = Outbox.make<string, never>()
      const started = performance.now()
      const error = yield* Effect.flip(firstAndPullWithin(outbox.stream, 50, () => "late"))
      assert.strictEqual(error, "late")
      assert.isAtLeast(performance.now() - started, 45)
    })
  )

  it.scopedLive("a stream that ends or fails before its first message answers None", () =>
    Effect.gen(function* () {
      const closed = Outbox.make<string, string>()
      closed.close(Effect.fail(Option.some("broken")))
      const [first] = yield* firstAndPullWithin(closed.stream, 1_000, () => "late")
      assert.isTrue(Option.isNone(first))
      const [none] = yield* firstAndPullWithin(Stream.empty, 1_000, () => "late")
      assert.isTrue(Option.isNone(none))
    })
  )

  it.scopedLive("any other stream is raced the general way, with the same answers", () =>
    Effect.gen(function* () {
      const [first, more] = yield* firstAndPullWithin(Stream.make(1, 2, 3), 1_000, () => "late")
      assert.deepStrictEqual([first, Chunk.toReadonlyArray(more)], [Option.some(1), [2, 3]])
      assert.strictEqual(yield* Effect.flip(firstAndPullWithin(Stream.never, 30, () => "late")), "late")
      assert.isUndefined(PullStream.withDeadline(Effect.fail(Option.none())))
    })
  )
})
