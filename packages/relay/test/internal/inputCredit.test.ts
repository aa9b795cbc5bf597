import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { InputCredit } from "../../src/internal/inputCredit.js"

/** Whether the fiber has finished, after the runtime had a chance to run it. */
const finished = (fiber: Fiber.RuntimeFiber<void>) =>
  Effect.zipRight(
    Effect.yieldNow(),
    Effect.map(Fiber.poll(fiber), (exit) => exit._tag === "Some")
  )

/** A PTY session's keystroke credit: take all-or-wait within the window, given back by the agent's acks. */
describe("InputCredit", () => {
  it.effect("takes at once within the window, waits past it, and goes on once enough is released", () =>
    Effect.gen(function* () {
      const credit = new InputCredit(10)
      yield* credit.take(6)
      const waiting = yield* Effect.fork(credit.take(6))
      assert.isFalse(yield* finished(waiting), "6 + 6 is over the window of 10")
      credit.release(1)
      assert.isFalse(yield* finished(waiting), "5 free is still short of 6")
      credit.release(1)
      assert.isTrue(yield* finished(waiting))
      // 6 − 2 + 6 = 10 taken: nothing is free.
      const next = yield* Effect.fork(credit.take(1))
      assert.isFalse(yield* finished(next))
      credit.release(10)
      assert.isTrue(yield* finished(next))
    })
  )

  it.effect("an interrupted take takes nothing, even when a release comes after it", () =>
    Effect.gen(function* () {
      const credit = new InputCredit(4)
      yield* credit.take(4)
      const gone = yield* Effect.fork(credit.take(3))
      assert.isFalse(yield* finished(gone))
      yield* Fiber.interrupt(gone)
      credit.release(4)
      // All 4 are free: the interrupted take's waker did not take 3 of them.
      yield* credit.take(4)
      const after = yield* Effect.fork(credit.take(1))
      assert.isFalse(yield* finished(after))
    })
  )

  it.effect("acknowledging more than was taken gains no window", () =>
    Effect.gen(function* () {
      const credit = new InputCredit(5)
      yield* credit.take(2)
      credit.release(1_000)
      yield* credit.take(5)
      const over = yield* Effect.fork(credit.take(1))
      assert.isFalse(yield* finished(over))
    })
  )
})
