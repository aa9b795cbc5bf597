/**
 * Reconnect delays: full jitter within [0, min(cap, base · 2ⁿ)], the ceiling doubling up to the cap, and the
 * counter's reset.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Backoff from "@cmdop/agent/Backoff"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"

const policy = Backoff.defaultPolicy

describe("Backoff", () => {
  it.prop(
    "every delay lies in [0, min(30 s, 0.5 s · 2ⁿ)]",
    [FastCheck.integer({ min: 0, max: 10_000 }), FastCheck.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })],
    ([attempt, random]) => {
      const delay = Backoff.delayMillis(policy, attempt, random)
      const ceiling = Math.min(30_000, 500 * 2 ** Math.min(attempt, 100))
      assert.isAtLeast(delay, 0)
      assert.isAtMost(delay, ceiling)
      assert.isTrue(Number.isFinite(delay))
    }
  )

  it.prop(
    "the ceiling never shrinks with more attempts and stays within the cap",
    [
      FastCheck.integer({ min: 0, max: 2_000 }),
      FastCheck.integer({ min: 1, max: 60_000 }),
      FastCheck.integer({ min: 1, max: 600_000 })
    ],
    ([attempt, base, cap]) => {
      const p: Backoff.Policy = { base: Duration.millis(base), cap: Duration.millis(cap) }
      const now = Backoff.ceilingMillis(p, attempt)
      assert.isAtMost(Backoff.ceilingMillis(p, attempt), Backoff.ceilingMillis(p, attempt + 1))
      assert.isAtMost(now, cap)
      assert.isAtLeast(now, Math.min(base, cap))
    }
  )

  it("doubles from 0.5 s and reaches the 30 s cap at attempt 6", () => {
    assert.deepStrictEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 50].map((n) => Backoff.ceilingMillis(policy, n)),
      [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
    )
    assert.strictEqual(Backoff.delayMillis(policy, 3, 0), 0)
    assert.strictEqual(Backoff.delayMillis(policy, 3, 0.5), 2_000)
  })

  it.effect("the counter grows the ceiling, sleeps the drawn delay, and resets", () =>
    Effect.gen(function* () {
      const backoff = yield* Backoff.make({ base: "100 millis", cap: "1 second" })
      const delays: Array<number> = []
      for (let i = 0; i < 6; i++) {
        const fiber = yield* Effect.fork(backoff.next)
        yield* TestClock.adjust("1 second")
        delays.push(Duration.toMillis(yield* Fiber.join(fiber)))
      }
      assert.strictEqual(yield* backoff.attempts, 6)
      delays.forEach((d, n) => assert.isAtMost(d, Math.min(1_000, 100 * 2 ** n)))
      yield* backoff.reset
      assert.strictEqual(yield* backoff.attempts, 0)
      const fiber = yield* Effect.fork(backoff.next)
      yield* TestClock.adjust("100 millis")
      assert.isAtMost(Duration.toMillis(yield* Fiber.join(fiber)), 100)
    })
  )

  it.effect("the schedule draws jittered delays too", () =>
    Effect.gen(function* () {
      let runs = 0
      const fiber = yield* Effect.fork(
        Effect.repeat(
          Effect.sync(() => runs++),
          Backoff.schedule({ base: "100 millis", cap: "200 millis" })
        )
      )
      yield* TestClock.adjust("1 second")
      // Each delay ≤ 200 ms: at least 5 repetitions in a second, more if the draws are short.
      assert.isAtLeast(runs, 6)
      yield* Fiber.interrupt(fiber)
    })
  )
})
