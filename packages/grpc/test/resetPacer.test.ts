/** `ResetPacer`: resets go at once while the burst allows, then at the pace, in the order they came. */
import * as ResetPacer from "@cmdop/grpc/ResetPacer"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

describe("ResetPacer", () => {
  it.live("the burst goes at once, the rest at the pace, in order", () =>
    Effect.gen(function* () {
      const pacer = ResetPacer.make({ burst: 5, perSecond: 50 })
      const ran: Array<number> = []
      for (let i = 0; i < 20; i++) pacer.pace(() => ran.push(i))
      assert.deepStrictEqual(ran, [0, 1, 2, 3, 4])
      assert.strictEqual(pacer.waiting(), 15)
      yield* Effect.sleep("110 millis")
      // ~5 more at 50 a second (one per 20 ms).
      assert.isAtLeast(ran.length, 8)
      assert.isAtMost(ran.length, 12)
      yield* Effect.sleep("400 millis")
      assert.deepStrictEqual(
        ran,
        Array.from({ length: 20 }, (_, i) => i)
      )
      assert.strictEqual(pacer.waiting(), 0)
    })
  )

  it.live("the burst comes back with time", () =>
    Effect.gen(function* () {
      const pacer = ResetPacer.make({ burst: 3, perSecond: 100 })
      let ran = 0
      for (let i = 0; i < 3; i++) pacer.pace(() => ran++)
      assert.strictEqual(ran, 3)
      yield* Effect.sleep("60 millis")
      for (let i = 0; i < 3; i++) pacer.pace(() => ran++)
      assert.strictEqual(ran, 6)
    })
  )
})
