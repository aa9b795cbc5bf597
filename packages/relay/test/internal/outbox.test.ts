import { assert, describe, it } from "@effect/vitest"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Outbox from "../../src/internal/outbox.js"

/** What one agent's connection sends it: in order, at most 64 a pull, a waiting reader woken, nothing after the close. */
describe("Outbox", () => {
  it.scoped("hands over what waits in order, up to 64 messages a pull", () =>
    Effect.gen(function* () {
      const outbox = Outbox.make<number, string>()
      for (let i = 0; i < 100; i++) outbox.push(i)
      const pull = yield* PullStream.toPull(outbox.stream)
      const first = yield* pull
      const second = yield* pull
      assert.deepStrictEqual(Chunk.toReadonlyArray(first), [...Array(64).keys()])
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(second),
        [...Array(36).keys()].map((i) => i + 64)
      )
    })
  )

  it.scoped("a waiting reader is woken by a push", () =>
    Effect.gen(function* () {
      const outbox = Outbox.make<string, never>()
      const pull = yield* PullStream.toPull(outbox.stream)
      const waiting = yield* Effect.fork(pull)
      yield* Effect.yieldNow()
      assert.isNull(waiting.unsafePoll())
      outbox.push("hello")
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(waiting)), ["hello"])
    })
  )

  it.scoped("closing drops what waits and ends the stream with its ending; later pushes are dropped", () =>
    Effect.gen(function* () {
      const outbox = Outbox.make<number, string>()
      outbox.push(1)
      outbox.close(Effect.fail(Option.some("closed for a violation")))
      outbox.push(2)
      // The first close wins.
      outbox.close(Effect.fail(Option.none()))
      const exit = yield* Effect.exit(Stream.runCollect(outbox.stream))
      assert.deepStrictEqual(exit, Exit.fail("closed for a violation"))
    })
  )

  it.scoped("a reader waiting when the outbox closes ends", () =>
    Effect.gen(function* () {
      const outbox = Outbox.make<number, never>()
      const reading = yield* Effect.fork(Stream.runCollect(outbox.stream))
      yield* Effect.yieldNow()
      outbox.close(Effect.fail(Option.none()))
      const all = yield* Fiber.join(reading)
      assert.deepStrictEqual(Chunk.toReadonlyArray(all), [])
    })
  )

  it.scoped("merge: a message of a waiting key is folded into it, in its place; after a pull it waits anew", () =>
    Effect.gen(function* () {
      const outbox = Outbox.make<string, never>()
      const latest = (_: string, next: string) => next
      outbox.merge("size", "80x24", latest)
      outbox.push("a")
      outbox.merge("size", "100x30", latest)
      outbox.merge("size", "120x40", latest)
      outbox.push("b")
      const pull = yield* PullStream.toPull(outbox.stream)
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* pull), ["120x40", "a", "b"])
      outbox.merge("size", "90x20", latest)
      outbox.merge("size", "91x20", latest)
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* pull), ["91x20"])
    })
  )

  it.scoped("merge: a flood of one key while nobody reads holds one message", () =>
    Effect.gen(function* () {
      const outbox = Outbox.make<number, never>()
      for (let i = 0; i < 100_000; i++) outbox.merge("flood", i, (waiting, next) => waiting + next)
      outbox.push(-1)
      const pull = yield* PullStream.toPull(outbox.stream)
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* pull), [(99_999 * 100_000) / 2, -1])
    })
  )

  it.scoped("merge: keys still waiting after a partial pull (over 64 waiting) are queued anew, never lost", () =>
    Effect.gen(function* () {
      const outbox = Outbox.make<string, never>()
      for (let i = 0; i < 70; i++) outbox.push(`m${i}`)
      outbox.merge("k", "k1", (_, next) => next)
      const pull = yield* PullStream.toPull(outbox.stream)
      assert.strictEqual(Chunk.size(yield* pull), 64)
      outbox.merge("k", "k2", (_, next) => next)
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* pull), ["m64", "m65", "m66", "m67", "m68", "m69", "k1", "k2"])
    })
  )

  describe("drainTo (push mode: no reader pulls)", () => {
    /** A sink that takes `room` messages before it asks to wait, and lets the test say when it is ready. */
    const makeSink = (room: number) => {
      const written: Array<string> = []
      const endings: Array<PullStream.Pull<string, string>> = []
      let ready: (() => void) | undefined
      const sink: PullStream.Sink<string, string> = {
        write: (m) => {
          written.push(m)
          return written.length < room
        },
        ready: (f) => {
          ready = f
        },
        end: (e) => endings.push(e)
      }
      return { sink, written, endings, makeReady: () => ready?.() }
    }

    it("what waited goes first, then each message is written as it comes", () => {
      const outbox = Outbox.make<string, string>()
      outbox.push("welcome")
      const { sink, written } = makeSink(100)
      outbox.drainTo(sink)
      assert.deepStrictEqual(written, ["welcome"])
      outbox.push("a")
      outbox.merge("size", "80x24", (_, next) => next)
      assert.deepStrictEqual(written, ["welcome", "a", "80x24"])
    })

    it("while the sink asks to wait, messages wait (merged) and go in order once it is ready", () => {
      const outbox = Outbox.make<string, string>()
      const { sink, written, makeReady } = makeSink(2)
      outbox.drainTo(sink)
      outbox.push("a")
      outbox.push("b")
      // The sink asked to wait after "b".
      outbox.push("c")
      outbox.merge("size", "80x24", (_, next) => next)
      outbox.merge("size", "100x30", (_, next) => next)
      outbox.push("d")
      assert.deepStrictEqual(written, ["a", "b"])
      makeReady()
      // It asks to wait again after the next write ("c"): the rest keeps waiting, in order.
      assert.deepStrictEqual(written, ["a", "b", "c"])
      makeReady()
      assert.deepStrictEqual(written, ["a", "b", "c", "100x30"])
      makeReady()
      assert.deepStrictEqual(written, ["a", "b", "c", "100x30", "d"])
    })

    it("the close ends the sink with its ending, drops what waits and later pushes; a close before drainTo too", () => {
      const outbox = Outbox.make<string, string>()
      const { sink, written, endings, makeReady } = makeSink(1)
      outbox.drainTo(sink)
      outbox.push("a")
      outbox.push("b")
      const violation: PullStream.Pull<string, string> = Effect.fail(Option.some("closed for a violation"))
      outbox.close(violation)
      outbox.close(Effect.fail(Option.none()))
      outbox.push("c")
      makeReady()
      assert.deepStrictEqual(written, ["a"])
      assert.deepStrictEqual(endings, [violation])

      const early = Outbox.make<string, string>()
      early.push("x")
      early.close(violation)
      const second = makeSink(10)
      early.drainTo(second.sink)
      assert.deepStrictEqual(second.written, [])
      assert.deepStrictEqual(second.endings, [violation])
    })
  })
})
