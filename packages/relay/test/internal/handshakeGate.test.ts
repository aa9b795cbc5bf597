/**
 * The gate on agent handshakes: at most `maxRunning` do their work at once, `maxWaiting` more wait for a turn in
 * order, and one more is refused at once with UNAVAILABLE, without running; a handshake that fails, or whose agent
 * goes away while it waits, gives its place back.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { HandshakeGate } from "../../src/internal/handshakeGate.js"

/** A handshake that records its start and then waits for `done`. */
const handshake = (started: Array<number>, n: number, done: Deferred.Deferred<void>) =>
  Effect.zipRight(
    Effect.sync(() => started.push(n)),
    Deferred.await(done)
  )

/** Lets the forked fibers run as far as they can (a woken waiter takes a few scheduler turns to start). */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

describe("HandshakeGate", () => {
  it.effect("runs at most maxRunning at once, lets the waiting ones in in order, refuses past the line", () =>
    Effect.gen(function* () {
      const gate = new HandshakeGate(2, 2)
      const started: Array<number> = []
      const done = yield* Effect.forEach([0, 1, 2, 3], () => Deferred.make<void>())
      const fibers = yield* Effect.forEach([0, 1, 2, 3], (i) =>
        Effect.fork(gate.within("relay:1", handshake(started, i, done[i]!)))
      )
      yield* settle
      assert.deepStrictEqual(started, [0, 1])
      assert.strictEqual(gate.size, 4)

      // The fifth is refused at once, and never runs.
      const refused = yield* Effect.exit(
        gate.within(
          "relay:1",
          Effect.sync(() => started.push(4))
        )
      )
      assert.isTrue(Exit.isFailure(refused))
      const error = yield* Effect.flip(refused)
      assert.strictEqual(error._tag, "RelayError")
      if (error._tag === "RelayError") {
        assert.strictEqual(error.reason, "Unavailable")
        assert.include(error.message, "taking 4 other agents' connections")
      }

      // One ends: the first in line starts.
      yield* Deferred.succeed(done[0]!, undefined)
      yield* Fiber.join(fibers[0]!)
      yield* settle
      assert.deepStrictEqual(started, [0, 1, 2])
      assert.strictEqual(gate.size, 3)

      for (const i of [1, 2, 3]) yield* Deferred.succeed(done[i]!, undefined)
      yield* Effect.forEach(fibers, Fiber.join)
      assert.deepStrictEqual(started, [0, 1, 2, 3])
      assert.strictEqual(gate.size, 0)
    })
  )

  it.effect("first come, first served: a newcomer never takes the turn of one already waiting", () =>
    Effect.gen(function* () {
      const gate = new HandshakeGate(1, 4)
      const started: Array<number> = []
      const done = yield* Effect.forEach([0, 1, 2], () => Deferred.make<void>())
      const first = yield* Effect.fork(gate.within("relay:1", handshake(started, 0, done[0]!)))
      yield* settle
      const second = yield* Effect.fork(gate.within("relay:1", handshake(started, 1, done[1]!)))
      yield* settle
      // The running one ends and a newcomer arrives in the same instant: the turn is the waiting one's.
      yield* Deferred.succeed(done[0]!, undefined)
      const third = yield* Effect.fork(gate.within("relay:1", handshake(started, 2, done[2]!)))
      yield* settle
      assert.deepStrictEqual(started, [0, 1])
      yield* Deferred.succeed(done[1]!, undefined)
      yield* settle
      assert.deepStrictEqual(started, [0, 1, 2])
      yield* Deferred.succeed(done[2]!, undefined)
      yield* Effect.forEach([first, second, third], Fiber.join)
      assert.strictEqual(gate.size, 0)
    })
  )

  it.effect("a handshake that fails, or is interrupted while it waits, gives its place back", () =>
    Effect.gen(function* () {
      const gate = new HandshakeGate(1, 1)
      const started: Array<number> = []
      const done = yield* Deferred.make<void>()
      const running = yield* Effect.fork(gate.within("relay:1", handshake(started, 0, done)))
      yield* settle
      const waiting = yield* Effect.fork(
        gate.within(
          "relay:1",
          Effect.sync(() => started.push(1))
        )
      )
      yield* settle
      assert.strictEqual(gate.size, 2)
      yield* Fiber.interrupt(waiting)
      assert.strictEqual(gate.size, 1)

      yield* Deferred.succeed(done, undefined)
      yield* Fiber.join(running)
      const failed = yield* Effect.exit(gate.within("relay:1", Effect.fail("store busy")))
      assert.deepStrictEqual(failed, Exit.fail("store busy"))
      assert.strictEqual(gate.size, 0)

      // The turn is free again: the next runs at once.
      yield* gate.within(
        "relay:1",
        Effect.sync(() => started.push(2))
      )
      assert.deepStrictEqual(started, [0, 2])
    })
  )
})
