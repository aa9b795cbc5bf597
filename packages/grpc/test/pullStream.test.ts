import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as PullStream from "../src/PullStream.js"

/**
 * `PullStream`: each combinator gives what its `Stream` counterpart gives, whether its inputs are marked (read by
 * their pull) or ordinary streams, and whoever reads the result (its own readers, or `Stream`'s).
 */

/** A marked stream of `chunks`, then its end or `failure`; `log` records when it is opened and closed. */
const marked = <E = never>(
  chunks: ReadonlyArray<ReadonlyArray<number>>,
  log: Array<string>,
  name: string,
  failure?: E
) =>
  PullStream.fromOpen<number, E, never>(
    Effect.gen(function* () {
      log.push(`open ${name}`)
      yield* Effect.addFinalizer(() => Effect.sync(() => log.push(`close ${name}`)))
      let i = 0
      return Effect.suspend(() =>
        i < chunks.length
          ? Effect.succeed(Chunk.fromIterable(chunks[i++]!))
          : Effect.fail(failure === undefined ? Option.none() : Option.some(failure))
      )
    })
  )

/** An ordinary stream of the same. */
const plain = <E = never>(
  chunks: ReadonlyArray<ReadonlyArray<number>>,
  log: Array<string>,
  name: string,
  failure?: E
) =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      log.push(`open ${name}`)
      yield* Effect.addFinalizer(() => Effect.sync(() => log.push(`close ${name}`)))
      const all = Stream.fromIterable(chunks.flat())
      return failure === undefined ? all : Stream.concat(all, Stream.fail(failure))
    })
  )

const kinds = [
  ["marked", marked],
  ["ordinary", plain]
] as const

/** Everything `stream` gives through `PullStream.runForEach`, and through `Stream.runCollect`. */
const readBoth = <E>(stream: Stream.Stream<number, E>) =>
  Effect.gen(function* () {
    const seen: Array<number> = []
    const own = yield* Effect.exit(PullStream.runForEach(stream, (n) => Effect.sync(() => seen.push(n))))
    const collected = yield* Effect.exit(Stream.runCollect(stream))
    return {
      own: Exit.map(own, () => seen),
      collected: Exit.map(collected, (c) => Chunk.toReadonlyArray(c) as ReadonlyArray<number>)
    }
  })

/** A producer for `PullStream.parking`: numbers offered wake the parked pull, which takes all of them at once. */
const parkedSource = () => {
  let ready: Array<number> = []
  let wake: (() => void) | undefined
  const pull = PullStream.parking(
    () => {
      if (ready.length === 0) return undefined
      const taken = ready
      ready = []
      return Effect.succeed(Chunk.fromIterable(taken))
    },
    (f) => {
      wake = f
    }
  )
  return {
    pull,
    /** The waker the pull left, if it is parked. */
    waker: () => wake,
    offer: (...values: Array<number>) => {
      ready.push(...values)
      wake?.()
    }
  }
}

describe("PullStream", () => {
  for (const [kind, make] of kinds) {
    it.effect(`mapError (${kind}): the elements, then the mapped failure`, () =>
      Effect.gen(function* () {
        const log: Array<string> = []
        const { own, collected } = yield* readBoth(
          PullStream.mapError(make([[1, 2], [3]], log, "a", "boom"), (e) => `mapped ${e}`)
        )
        assert.deepStrictEqual(own, Exit.fail("mapped boom"))
        assert.deepStrictEqual(collected, Exit.fail("mapped boom"))
        assert.deepStrictEqual(log, ["open a", "close a", "open a", "close a"])
      })
    )

    it.effect(`prepend (${kind}): the head, then the stream, opened only once the head was taken`, () =>
      Effect.gen(function* () {
        const log: Array<string> = []
        const stream = PullStream.prepend(0, make([[1], [2, 3]], log, "rest"))
        const { own, collected } = yield* readBoth(stream)
        assert.deepStrictEqual(own, Exit.succeed([0, 1, 2, 3]))
        assert.deepStrictEqual(collected, Exit.succeed([0, 1, 2, 3]))
        // Taking the head alone opens nothing.
        const opened: Array<string> = []
        const head = yield* Stream.runCollect(Stream.take(PullStream.prepend(0, make([[1]], opened, "rest")), 1))
        assert.deepStrictEqual(Chunk.toReadonlyArray(head), [0])
        assert.deepStrictEqual(opened, [])
        const onlyHead = yield* Effect.scoped(
          Effect.flatMap(PullStream.toPull(PullStream.prepend(0, make([[1]], opened, "rest"))), (pull) => pull)
        )
        assert.deepStrictEqual(Chunk.toReadonlyArray(onlyHead), [0])
        assert.deepStrictEqual(opened, [])
      })
    )

    for (const [secondKind, makeSecond] of kinds)
      it.effect(
        `concat (${kind} then ${secondKind}): the second opened when the first ends, both closed with the reader`,
        () =>
          Effect.gen(function* () {
            const log: Array<string> = []
            const pulls: Array<string> = []
            const result = yield* Effect.scoped(
              Effect.gen(function* () {
                const pull = yield* PullStream.toPull(
                  PullStream.concat(make([[1, 2]], log, "a"), makeSecond([[3], [4]], log, "b"))
                )
                const out: Array<number> = []
                for (;;) {
                  const chunk = yield* Effect.option(pull)
                  if (Option.isNone(chunk)) break
                  pulls.push(log.join(","))
                  out.push(...chunk.value)
                }
                return out
              })
            )
            assert.deepStrictEqual(result, [1, 2, 3, 4])
            // The second was opened only after the first's elements were taken.
            assert.strictEqual(pulls[0], "open a")
            assert.isTrue(log.includes("open b") && log.indexOf("open b") > log.indexOf("open a"))
            assert.isTrue(log.includes("close a") && log.includes("close b"))
            const both = yield* readBoth(PullStream.concat(make([[1]], [], "a"), makeSecond([[2]], [], "b")))
            assert.deepStrictEqual(both.own, Exit.succeed([1, 2]))
            assert.deepStrictEqual(both.collected, Exit.succeed([1, 2]))
          })
      )

    it.effect(`concat (${kind}): a failure of the first ends it there, the second never opened`, () =>
      Effect.gen(function* () {
        const log: Array<string> = []
        const { own } = yield* readBoth(PullStream.concat(make([[1]], log, "a", "bad"), marked([[2]], log, "b")))
        assert.isTrue(Exit.isFailure(own))
        assert.isFalse(log.includes("open b"))
      })
    )

    it.effect(`unwrapScoped (${kind}): opened in the reader's scope, a failure to open is the stream's failure`, () =>
      Effect.gen(function* () {
        const log: Array<string> = []
        const stream = PullStream.unwrapScoped(
          Effect.gen(function* () {
            yield* Effect.addFinalizer(() => Effect.sync(() => log.push("close outer")))
            return make([[7], [8]], log, "inner")
          })
        )
        const { own, collected } = yield* readBoth(stream)
        assert.deepStrictEqual(own, Exit.succeed([7, 8]))
        assert.deepStrictEqual(collected, Exit.succeed([7, 8]))
        assert.deepStrictEqual(log.slice(0, 3), ["open inner", "close inner", "close outer"])
        const refused = yield* readBoth(PullStream.unwrapScoped(Effect.fail("no")))
        assert.deepStrictEqual(refused.own, Exit.fail("no"))
        assert.deepStrictEqual(refused.collected, Exit.fail("no"))
      })
    )

    it.effect(`runForEach (${kind}): stops at the first failure of f, and closes the stream`, () =>
      Effect.gen(function* () {
        const log: Array<string> = []
        const seen: Array<number> = []
        const exit = yield* Effect.exit(
          PullStream.runForEach(make([[1, 2, 3], [4]], log, "a"), (n) =>
            n === 2 ? Effect.fail("stop") : Effect.sync(() => seen.push(n))
          )
        )
        assert.deepStrictEqual(exit, Exit.fail("stop"))
        assert.deepStrictEqual(seen, [1])
        assert.deepStrictEqual(log, ["open a", "close a"])
      })
    )

    it.effect(`runForEach (${kind}): a scope f asks for is the caller's, as with Stream.runForEach`, () =>
      Effect.gen(function* () {
        type Run = (
          stream: Stream.Stream<number>,
          f: (n: number) => Effect.Effect<void, never, Scope.Scope>
        ) => Effect.Effect<void, never, Scope.Scope>
        const runs: ReadonlyArray<Run> = [PullStream.runForEach, (stream, f) => Stream.runForEach(stream, f)]
        for (const run of runs) {
          const log: Array<string> = []
          yield* Effect.scoped(
            Effect.gen(function* () {
              yield* run(make([[1]], log, "a"), (n) => Effect.addFinalizer(() => Effect.sync(() => log.push(`f ${n}`))))
              log.push("loop done")
            })
          )
          assert.deepStrictEqual(log, ["open a", "close a", "loop done", "f 1"])
        }
      })
    )

    it.effect(`mapPull (${kind}): one step per chunk`, () =>
      Effect.gen(function* () {
        const stream = PullStream.mapPull(make([[1, 2], [3]], [], "a"), (pull) =>
          Effect.map(
            pull,
            Chunk.map((n) => n * 10)
          )
        )
        const { own, collected } = yield* readBoth(stream)
        assert.deepStrictEqual(own, Exit.succeed([10, 20, 30]))
        assert.deepStrictEqual(collected, Exit.succeed([10, 20, 30]))
      })
    )
  }

  it.effect("fromPull: every reader gets a pull of its own", () =>
    Effect.gen(function* () {
      const stream = PullStream.fromPull(() => {
        let n = 0
        return Effect.suspend(() => (n < 3 ? Effect.succeed(Chunk.of(n++)) : Effect.fail(Option.none())))
      })
      const first = yield* Stream.runCollect(stream)
      const second = yield* Stream.runCollect(stream)
      assert.deepStrictEqual(Chunk.toReadonlyArray(first), [0, 1, 2])
      assert.deepStrictEqual(Chunk.toReadonlyArray(second), [0, 1, 2])
    })
  )

  it.effect("parking: what arrives between the first look and the registration is taken without a wake", () =>
    Effect.gen(function* () {
      let looks = 0
      let parked = 0
      const pull = PullStream.parking(
        () => (++looks === 2 ? Effect.succeed(Chunk.of("late")) : undefined),
        (wake) => {
          if (wake !== undefined) parked++
        }
      )
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* pull), ["late"])
      assert.deepStrictEqual([looks, parked], [2, 0])
    })
  )

  it.live("parking: a parked pull is woken by the producer; the waker of an interrupted one takes nothing", () =>
    Effect.gen(function* () {
      const source = parkedSource()
      const waiting = yield* Effect.fork(source.pull)
      yield* Effect.sleep("10 millis")
      assert.isDefined(source.waker())
      source.offer(1, 2)
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(waiting)), [1, 2])
      const abandoned = yield* Effect.fork(source.pull)
      yield* Effect.sleep("10 millis")
      const stale = source.waker()
      assert.isDefined(stale)
      assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(abandoned)))
      // The producer calls the waker the gone reader left (twice, for good measure): what it offered stays for the
      // next reader, which takes it at once.
      source.offer(3)
      stale!()
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* source.pull), [3])
      // And the next reader that has to wait is woken as the first one was.
      const next = yield* Effect.fork(source.pull)
      yield* Effect.sleep("10 millis")
      assert.notStrictEqual(source.waker(), stale)
      source.offer(4)
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(next)), [4])
    })
  )

  it.live("parking with a deadline: fails with the timeout's error, unparked; an answer in time clears the timer", () =>
    Effect.gen(function* () {
      const source = parkedSource()
      const timed = PullStream.withDeadline(source.pull)!
      assert.isDefined(timed)
      assert.deepStrictEqual(yield* Effect.flip(timed(20, () => "late")), Option.some("late"))
      assert.isUndefined(source.waker())
      let timeouts = 0
      const waiting = yield* Effect.fork(timed(50, () => ++timeouts))
      yield* Effect.sleep("10 millis")
      source.offer(7)
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(waiting)), [7])
      // Interrupted while waiting: unparked, and its timer never fires either.
      const abandoned = yield* Effect.fork(timed(50, () => ++timeouts))
      yield* Effect.sleep("10 millis")
      yield* Fiber.interrupt(abandoned)
      assert.isUndefined(source.waker())
      yield* Effect.sleep("100 millis")
      assert.strictEqual(timeouts, 0)
      assert.isUndefined(PullStream.withDeadline(Effect.fail(Option.none())))
    })
  )

  it.effect("empty and startingWith", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Stream.runCollect(PullStream.empty)), [])
      const stream = PullStream.fromPull(() =>
        PullStream.startingWith(Chunk.make(1, 2), Effect.fail(Option.none<never>()))
      )
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Stream.runCollect(stream)), [1, 2])
    })
  )

  describe("fromPush", () => {
    const pushed = (fail: boolean) =>
      PullStream.fromPush<number, string, never>((sink) =>
        Effect.gen(function* () {
          sink.write(1)
          yield* Effect.yieldNow()
          sink.write(2)
          if (fail) sink.end(Effect.fail(Option.some("closed")))
          else sink.end(Effect.fail(Option.none()))
          // Written after the end: dropped.
          sink.write(3)
          // The producer may go on (a reader that knows the mark stops it; any other ends its fiber with the scope).
          yield* Effect.never
        })
      )

    it.effect("an ordinary reader gets what was written, then the first ending", () =>
      Effect.gen(function* () {
        const ok = yield* readBoth(pushed(false))
        assert.deepStrictEqual(ok.own, Exit.succeed([1, 2]))
        assert.deepStrictEqual(ok.collected, Exit.succeed([1, 2]))
        const failed = yield* readBoth(pushed(true))
        assert.deepStrictEqual(failed.own, Exit.fail("closed"))
        assert.deepStrictEqual(failed.collected, Exit.fail("closed"))
      })
    )

    it.effect("the producer's return or failure ends the stream when it called no end", () =>
      Effect.gen(function* () {
        const returns = PullStream.fromPush<number, string, never>((sink) => Effect.sync(() => void sink.write(5)))
        assert.deepStrictEqual(
          Exit.map(yield* Effect.exit(Stream.runCollect(returns)), Chunk.toReadonlyArray),
          Exit.succeed([5])
        )
        const fails = PullStream.fromPush<number, string, never>(() => Effect.fail("boom"))
        assert.deepStrictEqual(yield* Effect.exit(Stream.runCollect(fails)), Exit.fail("boom"))
      })
    )

    it("stays pushed through mapError (the gRPC writer can run it on its own fiber)", () => {
      assert.isDefined(PullStream.pushOf(PullStream.mapError(pushed(true), (e) => `mapped ${e}`)))
      assert.isUndefined(PullStream.pushOf(PullStream.mapError(PullStream.empty, (e) => e)))
    })

    it.effect("mapError maps the ending of a pushed stream", () =>
      Effect.gen(function* () {
        const exit = yield* Effect.exit(Stream.runCollect(PullStream.mapError(pushed(true), (e) => `mapped ${e}`)))
        assert.deepStrictEqual(exit, Exit.fail("mapped closed"))
      })
    )
  })
})
