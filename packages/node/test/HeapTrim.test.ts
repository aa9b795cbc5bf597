/**
 * `HeapTrim`: its policy (when a trim is due), and a real trim of this test process's C heap, fragmented the way a
 * relay's is after a transfer: 256 KiB buffers freed between small ones still in use.
 */
import * as HeapTrim from "@cmdop/node/HeapTrim"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as v8 from "node:v8"
import * as vm from "node:vm"

const MiB = 1024 * 1024

/** Resident bytes of this process's `brk` heap (glibc's main arena), from /proc/self/smaps. */
const brkHeapRss = (): number => {
  let mapping = ""
  let kib = 0
  for (const line of fs.readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) mapping = line.split(/\s+/)[5] ?? ""
    else if (mapping === "[heap]" && line.startsWith("Rss:")) kib += Number(line.split(/\s+/)[1])
  }
  return kib * 1024
}

/** A full collection, then a pause for V8's concurrent freeing of the collected buffers' memory. */
const collect = (gc: () => void) =>
  Effect.promise(async () => {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 200))
    gc()
    await new Promise((resolve) => setTimeout(resolve, 200))
  })

describe("HeapTrim", () => {
  it("trims when a burst is over: RSS grown, or ArrayBuffer memory fallen, by GROWN_BY, and the process idle", () => {
    const look = (arrayBuffers: number, rss: number, busy: number) => ({
      arrayBuffers: arrayBuffers * MiB,
      rss: rss * MiB,
      busy
    })
    const idle = HeapTrim.QUIET_BELOW / 2
    const working = HeapTrim.QUIET_BELOW
    const watch = HeapTrim.watchFrom(look(4, 100, idle))
    assert.isFalse(HeapTrim.due(watch, look(4, 110, idle)), "idle, but RSS grew by less than GROWN_BY")
    assert.isFalse(HeapTrim.due(watch, look(40, 150, 0.9)), "a transfer under way")
    assert.isFalse(HeapTrim.due(watch, look(60, 170, working)), "still working")
    assert.isTrue(HeapTrim.due(watch, look(60, 170, idle)), "idle after RSS grew by 70 MiB")
    HeapTrim.trimmed(watch, look(20, 120, idle))
    assert.isFalse(HeapTrim.due(watch, look(20, 120, idle)), "nothing new since the trim")
    assert.isFalse(HeapTrim.due(watch, look(30, 125, 0.5)), "the next burst")
    assert.isFalse(HeapTrim.due(watch, look(16, 125, idle)), "idle, but ArrayBuffer memory fell by less than GROWN_BY")
    assert.isTrue(HeapTrim.due(watch, look(14, 125, idle)), "idle, 16 MiB below the highest since the trim")
  })

  it("asks for a full collection when the burst's buffers outlived the young one", () => {
    const look = (arrayBuffers: number, rss: number) => ({ arrayBuffers: arrayBuffers * MiB, rss: rss * MiB, busy: 0 })
    const watch = HeapTrim.watchFrom(look(4, 100))
    assert.isFalse(HeapTrim.needsFullCollection(watch, { arrayBuffers: 12 * MiB }), "less than GROWN_BY held")
    assert.isTrue(HeapTrim.needsFullCollection(watch, { arrayBuffers: 20 * MiB }), "GROWN_BY more than kept")
    // A trim taken while buffers are still held does not raise what the process is said to keep.
    HeapTrim.trimmed(watch, look(40, 160))
    assert.isTrue(HeapTrim.needsFullCollection(watch, { arrayBuffers: 40 * MiB }))
    HeapTrim.trimmed(watch, look(2, 100))
    assert.isFalse(HeapTrim.needsFullCollection(watch, { arrayBuffers: 12 * MiB }))
  })

  it.live(
    "buffers moved to the old generation outlive a young collection and go with a full one in the background",
    () =>
      Effect.gen(function* () {
        v8.setFlagsFromString("--expose-gc")
        const gc = vm.runInNewContext("gc") as (options: { type: "minor" | "major"; execution?: "async" }) => void
        gc({ type: "major" })
        const start = process.memoryUsage().arrayBuffers
        let held: Array<Buffer> | undefined = []
        for (let i = 0; i < 128; i++) held.push(Buffer.alloc(256 * 1024, i))
        // Still referenced through two young collections: moved to the old generation, as buffers in flight are.
        gc({ type: "minor" })
        gc({ type: "minor" })
        held = undefined
        gc({ type: "minor" })
        const afterMinor = process.memoryUsage().arrayBuffers - start
        assert.isAbove(afterMinor, 24 * MiB, "a young collection leaves them")
        gc({ type: "major", execution: "async" })
        let freed = false
        for (let waited = 0; waited < 5000 && !freed; waited += 50) {
          yield* Effect.sleep("50 millis")
          freed = process.memoryUsage().arrayBuffers - start < 8 * MiB
        }
        assert.isTrue(freed, `the full collection freed them within 5 s (${(afterMinor / MiB).toFixed(1)} MiB before)`)
      })
  )

  it.live("gives the free pages of a fragmented C heap back to the system", () =>
    Effect.gen(function* () {
      assert.strictEqual(process.platform, "linux", "this suite runs on Linux (glibc)")
      const trim = yield* HeapTrim.loadTrim
      assert.isDefined(trim, "koffi's prebuilt binary and glibc's malloc_trim")
      v8.setFlagsFromString("--expose-gc")
      const gc = vm.runInNewContext("gc") as () => void
      // glibc serves a request of 128 KiB or more from its own mapping until such a mapping is freed; then it
      // raises that threshold to the freed size, and buffers of 256 KiB come from the heap, as in a busy relay.
      Buffer.allocUnsafeSlow(4 * MiB).fill(1)
      yield* collect(gc)
      yield* Effect.sync(trim!)
      // 48 MiB of 256 KiB buffers, each followed by a small buffer that stays in use: once the large ones are
      // collected their memory is free but sits between blocks in use, so glibc cannot hand it back by itself.
      let large: Array<Buffer> | undefined = []
      const small: Array<Buffer> = []
      for (let i = 0; i < 192; i++) {
        large.push(Buffer.allocUnsafeSlow(256 * 1024).fill(i))
        small.push(Buffer.allocUnsafeSlow(24 * 1024).fill(i))
      }
      const filled = brkHeapRss()
      large = undefined
      yield* collect(gc)
      const collected = brkHeapRss()
      yield* Effect.sync(trim!)
      const trimmed = brkHeapRss()
      const report = `heap RSS: ${(filled / MiB).toFixed(1)} MiB filled, ${(collected / MiB).toFixed(1)} after the collection, ${(trimmed / MiB).toFixed(1)} after the trim`
      assert.isBelow(filled - collected, 16 * MiB, `the collection alone gives little back: ${report}`)
      assert.isAbove(collected - trimmed, 32 * MiB, `the trim gives the collected buffers' pages back: ${report}`)
      assert.strictEqual(small.length, 192)
    })
  )
})
