/**
 * Turns at a limited resource (`internal/turns.ts`): first come first served, and a wait that times out or is
 * interrupted holds nothing and leaves the line. The handshake gate's tests cover order and barging through it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { Turns } from "../../src/internal/turns.js"

const settle = Effect.repeatN(Effect.yieldNow(), 20)

describe("Turns", () => {
  it.effect("a wait that times out holds no turn and leaves the line; the next in line still gets one", () =>
    Effect.gen(function* () {
      const turns = new Turns(1)
      const done = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(turns.run(Deferred.await(done)))
      yield* settle
      const impatient = yield* Effect.fork(
        turns.runAfter(
          Effect.timeoutFail(turns.take, { duration: "1 second", onTimeout: () => "waited too long" }),
          Effect.succeed("ran")
        )
      )
      const patient = yield* Effect.fork(turns.run(Effect.succeed("ran")))
      yield* settle
      assert.deepStrictEqual([turns.running, turns.waiting], [1, 2])
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(yield* Fiber.await(impatient), Exit.fail("waited too long"))
      assert.deepStrictEqual([turns.running, turns.waiting], [1, 1])
      yield* Deferred.succeed(done, undefined)
      assert.strictEqual(yield* Fiber.join(patient), "ran")
      yield* Fiber.join(holder)
      assert.deepStrictEqual([turns.running, turns.waiting], [0, 0])
    })
  )

  it.effect("work that fails gives its turn back; many waiters over many turns are served in order", () =>
    Effect.gen(function* () {
      const turns = new Turns(2)
      assert.isTrue(Exit.isFailure(yield* Effect.exit(turns.run(Effect.fail("broken")))))
      assert.strictEqual(turns.running, 0)
      const order: Array<number> = []
      const gates = yield* Effect.forEach(Array.from({ length: 50 }), () => Deferred.make<void>())
      const fibers = yield* Effect.forEach(gates, (gate, i) =>
        Effect.fork(
          turns.run(
            Effect.zipRight(
              Effect.sync(() => order.push(i)),
              Deferred.await(gate)
            )
          )
        )
      )
      yield* settle
      for (const gate of gates) {
        yield* Deferred.succeed(gate, undefined)
        yield* settle
      }
      yield* Effect.forEach(fibers, Fiber.join)
      assert.deepStrictEqual(
        order,
        Array.from({ length: 50 }, (_, i) => i)
      )
      assert.deepStrictEqual([turns.running, turns.waiting], [0, 0])
    })
  )
})
