/**
 * Reconnect delays: full jitter within [0, min(cap, base · 2ⁿ)], the ceiling doubling up to the cap, and the
 * counter's reset. The schedule is stepped with `Schedule.run` (no waiting) and slept on the TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Backoff from "@cmdop/agent/Backoff"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"

const policy = Backoff.defaultPolicy

/** The first `n` outputs (delays) of `schedule`, in milliseconds. */
const firstDelays = (schedule: Schedule.Schedule<Duration.Duration>, n: number) =>
  Effect.map(Schedule.run(schedule, 0, Array.from({ length: n })), (out) => Chunk.toArray(out).map(Duration.toMillis))

describe("Backoff", () => {
  it.effect.prop(
    "every delay lies in [0, min(30 s, 0.5 s · 2ⁿ)]",
    [FastCheck.integer()],
    ([seed]) =>
      Effect.gen(function* () {
        const delays = yield* firstDelays(Backoff.schedule(policy), 1_100).pipe(Effect.withRandom(Random.make(seed)))
        delays.forEach((delay, attempt) => {
          const ceiling = Math.min(30_000, 500 * 2 ** Math.min(attempt, 100))
          assert.isAtLeast(delay, 0)
          assert.isAtMost(delay, ceiling)
          assert.isTrue(Number.isFinite(delay))
        })
      }),
    { fastCheck: { numRuns: 5 } }
  )

  it.effect.prop(
    "the ceiling never shrinks with more attempts and stays within the cap",
    [FastCheck.integer({ min: 1, max: 60_000 }), FastCheck.integer({ min: 1, max: 600_000 })],
    ([base, cap]) =>
      Effect.gen(function* () {
        const p: Backoff.Policy = { base: Duration.millis(base), cap: Duration.millis(cap) }
        const ceilings = yield* firstDelays(Backoff.ceilings(p), 64)
        ceilings.forEach((now, attempt) => {
          if (attempt > 0) assert.isAtMost(ceilings[attempt - 1]!, now)
          assert.isAtMost(now, cap)
          assert.isAtLeast(now, Math.min(base, cap))
        })
      }),
    { fastCheck: { numRuns: 30 } }
  )

  it.effect("doubles from 0.5 s and reaches the 30 s cap at attempt 6; the draw scales the ceiling", () =>
    Effect.gen(function* () {
      const ceilings = yield* firstDelays(Backoff.ceilings(policy), 51)
      assert.deepStrictEqual(
        [0, 1, 2, 3, 4, 5, 6, 7, 50].map((n) => ceilings[n]),
        [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
      )
      const drawn = yield* firstDelays(Backoff.schedule(policy), 8).pipe(
        Effect.withRandom(Random.fixed([0.5, 0.5, 0.5, 0, 0.5, 0.5, 0.5, 0.5]))
      )
      assert.strictEqual(drawn[3], 0)
      assert.strictEqual(drawn[4], 4_000)
    })
  )

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

  it.effect("the counter's sleep is the delay it reports", () =>
    Effect.gen(function* () {
      const backoff = yield* Backoff.make({ base: "1 second", cap: "10 seconds" })
      const fiber = yield* Effect.fork(backoff.next.pipe(Effect.withRandom(Random.fixed([0.5]))))
      yield* TestClock.adjust("499 millis")
      assert.isNull(fiber.unsafePoll(), "still sleeping before the drawn 500 ms")
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(Duration.toMillis(yield* Fiber.join(fiber)), 500)
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
