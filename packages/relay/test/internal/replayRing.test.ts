import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import { ReplayRing } from "../../src/internal/replayRing.js"

/** The bytes of `[from, end)` a ring of `capacity` holds after `pushes`, the plain way (a model). */
const model = (capacity: number, pushes: ReadonlyArray<readonly [number, number]>) => {
  let chunks: Array<{ offset: number; size: number }> = []
  let end = 0
  for (const [offset, size] of pushes) {
    const chunkEnd = offset + size
    if (chunkEnd <= end) continue
    let fresh = { offset, size }
    if (offset < end) fresh = { offset: end, size: chunkEnd - end }
    else if (offset > end) chunks = []
    chunks.push(fresh)
    end = chunkEnd
    let bytes = chunks.reduce((n, c) => n + c.size, 0)
    while (chunks.length > 1 && bytes - chunks[0]!.size >= capacity) bytes -= chunks.shift()!.size
  }
  return { start: chunks.length === 0 ? end : chunks[0]!.offset, end }
}

/** Byte `i` of the session's whole output, so any read can be checked against its offset. */
const byteAt = (i: number) => (i * 7 + 3) % 251

const chunkOf = (offset: number, size: number) => ({
  offset,
  data: Uint8Array.from({ length: size }, (_, k) => byteAt(offset + k))
})

describe("ReplayRing", () => {
  it.prop(
    "holds what a plain list would, and reads from any offset give exactly the bytes from there to the end",
    [
      FastCheck.integer({ min: 1, max: 64 }),
      FastCheck.array(FastCheck.tuple(FastCheck.integer({ min: -8, max: 12 }), FastCheck.integer({ min: 1, max: 9 })), {
        maxLength: 200
      }),
      FastCheck.integer({ min: -5, max: 400 })
    ],
    ([capacity, steps, readAt]) => {
      const ring = new ReplayRing(capacity)
      const pushes: Array<readonly [number, number]> = []
      for (const [shift, size] of steps) {
        // Mostly contiguous output, sometimes overlapping (a replay) or past the end (bytes lost at the agent).
        const offset = Math.max(0, ring.end + (shift > 8 ? shift : shift < -4 ? shift : 0))
        pushes.push([offset, size])
        ring.push(chunkOf(offset, size))
      }
      const expected = model(capacity, pushes)
      assert.strictEqual(ring.start, expected.start)
      assert.strictEqual(ring.end, expected.end)
      const from = Math.max(readAt, ring.start)
      const read = ring.from(readAt)
      let next = from
      for (const c of read) {
        assert.strictEqual(c.offset, next, "contiguous from the offset asked for (or the oldest byte)")
        c.data.forEach((b, k) => assert.strictEqual(b, byteAt(c.offset + k)))
        next += c.data.byteLength
      }
      assert.strictEqual(next, Math.max(from, ring.end))
    }
  )

  it("keeps up with hundreds of thousands of one-byte chunks (a long typing session) and drops the oldest", () => {
    const ring = new ReplayRing(1024)
    for (let i = 0; i < 300_000; i++) ring.push(chunkOf(i, 1))
    assert.strictEqual(ring.end, 300_000)
    assert.strictEqual(ring.start, 300_000 - 1024)
    assert.deepStrictEqual(
      ring.from(299_998).map((c) => c.offset),
      [299_998, 299_999]
    )
    assert.strictEqual(ring.from(0).length, 1024)
    assert.deepStrictEqual(ring.from(300_000), [])
  })
})
