import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { attachInput, attachInputOfPull, execInput, execInputOfPull } from "../../src/internal/callInput.js"

type Tail = Parameters<typeof execInput>[0] extends Stream.Stream<infer A, any> ? A : never

const data = new Uint8Array([1, 2])
const tail: ReadonlyArray<Tail> = [
  { _tag: "Stdin", data },
  { _tag: "Signal", signal: "INT" },
  { _tag: "Unreadable" },
  { _tag: "Eof" },
  { _tag: "Signal", signal: "TERM" }
]

/** A pull over `chunks`, then the end (`None`) or a failure (`Some`). */
const pullOf = (chunks: ReadonlyArray<ReadonlyArray<Tail>>, failure?: string) => {
  let i = 0
  return Effect.suspend(() =>
    i < chunks.length
      ? Effect.succeed(Chunk.fromIterable(chunks[i++]!))
      : Effect.fail(failure === undefined ? Option.none<string>() : Option.some(failure))
  )
}

const collect = (stream: Stream.Stream<unknown>) => Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

describe("execInputOfPull", () => {
  it.effect("gives what execInput gives over the same messages, with and without stdin", () =>
    Effect.gen(function* () {
      for (const stdin of [true, false]) {
        const expected = yield* collect(execInput(Stream.fromIterable(tail), stdin))
        const more = Chunk.fromIterable(tail.slice(0, 1))
        const got = yield* collect(execInputOfPull(more, pullOf([tail.slice(1, 3), [], tail.slice(3)]), stdin))
        assert.deepStrictEqual(got, expected)
      }
    })
  )

  it.effect("a call that breaks off ends stdin with an Eof (only when it sends stdin), as execInput does", () =>
    Effect.gen(function* () {
      const broken = Stream.concat(Stream.fromIterable(tail.slice(0, 2)), Stream.fail("gone"))
      for (const stdin of [true, false]) {
        const expected = yield* collect(execInput(broken, stdin))
        const got = yield* collect(execInputOfPull(Chunk.empty(), pullOf([tail.slice(0, 2)], "gone"), stdin))
        assert.deepStrictEqual(got, expected)
        assert.strictEqual(got.at(-1) !== undefined && (got.at(-1) as { _tag: string })._tag === "Eof", stdin)
      }
    })
  )

  it.effect("a forwarded call's Cancel calls onCancel when it is read, and is not input", () =>
    Effect.gen(function* () {
      let cancels = 0
      const onCancel = () => cancels++
      const withCancel: ReadonlyArray<Tail> = [...tail.slice(0, 2), { _tag: "Cancel" }]
      const got = yield* collect(execInputOfPull(Chunk.empty(), pullOf([withCancel]), true, onCancel))
      assert.deepStrictEqual(got, yield* collect(execInput(Stream.fromIterable(tail.slice(0, 2)), true)))
      assert.strictEqual(cancels, 1)
      // Not before it is read: the first chunk, the start's, holds no Cancel.
      const pulled = yield* Stream.toPull(execInputOfPull(Chunk.of(tail[0]!), pullOf([withCancel]), true, onCancel))
      yield* pulled
      assert.strictEqual(cancels, 1)
      yield* pulled
      assert.strictEqual(cancels, 2)
    }).pipe(Effect.scoped)
  )
})

describe("attachInputOfPull", () => {
  const attachTail: ReadonlyArray<{ readonly _tag: string } & Record<string, unknown>> = [
    { _tag: "Data", data },
    { _tag: "Unreadable" },
    { _tag: "Resize", cols: 100, rows: 30 },
    { _tag: "Start" },
    { _tag: "Data", data: new Uint8Array([3]) }
  ]
  const pull = (chunks: ReadonlyArray<ReadonlyArray<{ readonly _tag: string }>>, failure?: string) =>
    pullOf(chunks as ReadonlyArray<ReadonlyArray<Tail>>, failure)

  it.effect("gives what attachInput gives: input and resizes, in order, nothing else", () =>
    Effect.gen(function* () {
      const expected = yield* collect(attachInput(Stream.fromIterable(attachTail)))
      assert.deepStrictEqual(
        expected.map((m) => (m as { _tag: string })._tag),
        ["Data", "Resize", "Data"]
      )
      const more = Chunk.fromIterable(attachTail.slice(0, 2))
      const got = yield* collect(attachInputOfPull(more, pull([attachTail.slice(2, 3), [], attachTail.slice(3)])))
      assert.deepStrictEqual(got, expected)
    })
  )

  it.effect("a call that breaks off just ends the input (the viewer detaches), as attachInput does", () =>
    Effect.gen(function* () {
      const broken = Stream.concat(Stream.fromIterable(attachTail.slice(0, 3)), Stream.fail("gone"))
      const expected = yield* collect(attachInput(broken))
      const got = yield* collect(attachInputOfPull(Chunk.empty(), pull([attachTail.slice(0, 3)], "gone")))
      assert.deepStrictEqual(got, expected)
      assert.strictEqual(got.length, 2)
    })
  )

  it.effect("a forwarded call's Cancel calls onCancel, in the start's chunk or a later one, and is not input", () =>
    Effect.gen(function* () {
      let cancels = 0
      const onCancel = () => cancels++
      const expected = yield* collect(attachInput(Stream.fromIterable(attachTail)))
      const more = Chunk.fromIterable([{ _tag: "Cancel" }, ...attachTail.slice(0, 2)])
      const got = yield* collect(
        attachInputOfPull(more, pull([attachTail.slice(2, 3), [{ _tag: "Cancel" }], attachTail.slice(3)]), onCancel)
      )
      assert.deepStrictEqual(got, expected)
      assert.strictEqual(cancels, 2)
    })
  )
})
