import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { firstAndRest } from "../../src/internal/firstAndRest.js"

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
