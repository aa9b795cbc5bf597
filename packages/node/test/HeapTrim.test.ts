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
