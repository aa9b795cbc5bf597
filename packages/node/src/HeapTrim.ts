/**
 * Gives the C heap's free memory back to the system after a burst of data, in a long-lived process (the relay,
 * the agent daemon).
 *
 * Every byte a relay or an agent moves passes through buffers Node allocates with `malloc`: HTTP/2's 64 KiB read
 * buffers and gRPC's messages of up to 256 KiB. When a collection frees them, glibc keeps the memory in its heap
 * and hands back only what lies above the highest block still in use; so after a 1 GiB transfer a relay kept
 * 60–80 MiB of free heap resident (measured: 129 MiB idle, 209 MiB after, and 133 MiB after one `malloc_trim(0)`,
 * which releases the free pages anywhere in the heap). Node does not expose `malloc_trim`; it is called here
 * through koffi (a maintained FFI with prebuilt binaries), bound to that one C function and nothing else.
 *
 * When: once a burst is over. A burst is the process's RSS grown by `GROWN_BY` since the last trim, or its
 * ArrayBuffer memory (what those buffers are) fallen by as much from its highest since then (a collection freed
 * them); it is over when the process used less than `QUIET_BELOW` of a core since the last look, `CHECK_EVERY`
 * before. Not during a burst: the pages given back would be faulted in again at once (trimming every second during
 * a transfer cost the relay 10–30% more CPU per MB). The burst's last buffers are collected first (they are
 * garbage an idle process may keep for minutes), then the heap is trimmed: a few milliseconds in all. Buffers that
 * outlived a young collection (on a busy machine the collector runs late and moves buffers still in flight to the
 * old generation, the likely cause of a relay found at 193 MiB against 106 after the abuse suite's transfer test,
 * which a young collection alone cannot free: measured in `HeapTrim.test.ts`) are left to a full collection,
 * started in the background when a young one leaves `GROWN_BY` more ArrayBuffer memory than the process kept after
 * its last trim; once it has freed them, the next look trims again. Where the C library has no `malloc_trim` (musl,
 * macOS, Windows) nothing happens.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as vm from "node:vm"

/** How much RSS growth, or fall of ArrayBuffer memory, makes a burst. */
export const GROWN_BY = 16 * 1024 * 1024
/** The process used less than this share of one core since the last look: the burst is over. */
export const QUIET_BELOW = 0.1
/** How often the process is looked at (`process.memoryUsage()` and `process.cpuUsage()`). */
export const CHECK_EVERY = Duration.seconds(1)

/** glibc's `malloc_trim(0)`, or `undefined` where this process's C library has none. */
export const loadTrim: Effect.Effect<(() => void) | undefined> = Effect.tryPromise(() => import("koffi")).pipe(
  Effect.map((koffi) => {
    const trim = koffi.load("libc.so.6").func("int malloc_trim(size_t pad)")
    return () => void trim(0)
  }),
  Effect.orElseSucceed(() => undefined)
)

/** What one look sees. */
export interface Look {
  readonly arrayBuffers: number
  readonly rss: number
  /** The share of one core the process used since the last look. */
  readonly busy: number
}

/** What the policy keeps from one look to the next. */
export interface Watch {
  /** The highest ArrayBuffer memory since the last trim. */
  highest: number
  /** RSS right after the last trim (or at the start). */
  trimmedAt: number
  /** ArrayBuffer memory right after the last trim (or at the start): what the process holds between bursts. */
  kept: number
}

export const watchFrom = (look: Look): Watch => ({
  highest: look.arrayBuffers,
  trimmedAt: look.rss,
  kept: look.arrayBuffers
})

/** Whether a trim is due now: a burst (see the module's header) that is over. */
export const due = (watch: Watch, look: Look): boolean => {
  if (look.arrayBuffers > watch.highest) watch.highest = look.arrayBuffers
  return (
    look.busy < QUIET_BELOW && (look.rss - watch.trimmedAt >= GROWN_BY || watch.highest - look.arrayBuffers >= GROWN_BY)
  )
}

/**
 * Whether, after the young-generation collection, the burst's buffers still hold `GROWN_BY` more ArrayBuffer memory
 * than the process kept after its last trim: they outlived a young collection (on a busy machine the collector runs
 * late, and buffers still in flight are moved to the old generation), and only a full one frees them.
 */
export const needsFullCollection = (watch: Watch, afterMinor: Pick<Look, "arrayBuffers">): boolean =>
  afterMinor.arrayBuffers - watch.kept >= GROWN_BY

/** After a trim: the next burst is measured from here. */
export const trimmed = (watch: Watch, look: Pick<Look, "arrayBuffers" | "rss">): void => {
  watch.highest = look.arrayBuffers
  watch.trimmedAt = look.rss
  watch.kept = Math.min(watch.kept, look.arrayBuffers)
}

/** What this process's trims did so far (for `/metrics`). */
export interface Stats {
  readonly trims: number
  /** RSS given back, summed over the trims (each one's RSS before less after). */
  readonly releasedBytes: number
}

const totals = { trims: 0, releasedBytes: 0 }

/** The process's trims so far: a process has one C heap, however many layers watch it. */
export const stats = (): Stats => ({ ...totals })

/**
 * V8's collector, where the process runs with `--expose-gc` (the CLI's launcher sets it for the relay, the agent
 * daemon and `up`): that flag puts `gc` on every new context, not on the main one.
 */
const exposedGc = ():
  ((options: { readonly type: "minor" | "major"; readonly execution?: "sync" | "async" }) => void) | undefined => {
  try {
    return vm.runInNewContext("typeof gc === 'function' ? gc : undefined")
  } catch {
    return undefined
  }
}

/**
 * Watches this process for as long as the layer's scope is open (one fiber, one timer). koffi and `malloc_trim`
 * are loaded at the first trim: a process that never has a burst never loads them (they are 1.3 MiB of an idle
 * agent's RSS).
 */
export const layer: Layer.Layer<never> = Layer.scopedDiscard(
  Effect.gen(function* () {
    /** `null` until the first trim loads it; `undefined` when this C library has none. */
    let trim: (() => void) | undefined | null = null
    let gc: ReturnType<typeof exposedGc> | null = null
    let cpu = process.cpuUsage()
    let at = performance.now()
    const look = (): Look => {
      const { arrayBuffers, rss } = process.memoryUsage()
      const now = performance.now()
      const used = process.cpuUsage(cpu)
      const busy = (used.user + used.system) / 1000 / Math.max(1, now - at)
      cpu = process.cpuUsage()
      at = now
      return { arrayBuffers, rss, busy }
    }
    const watch = watchFrom(look())
    /** Collects and trims; `true`: keep watching. */
    const trimNow = (trimHeap: () => void, before: Look) =>
      Effect.suspend(() => {
        // The burst's last buffers are garbage still holding their memory: an idle process may not collect for
        // minutes. They died young, so a young-generation collection (a millisecond or two) frees them.
        if (gc === null) gc = exposedGc()
        gc?.({ type: "minor" })
        // What outlived it is freed by a full collection, started here in the background (V8 marks concurrently,
        // no long pause); once it has freed them the ArrayBuffer memory has fallen by GROWN_BY, and the next look
        // trims again.
        if (needsFullCollection(watch, process.memoryUsage())) gc?.({ type: "major", execution: "async" })
        trimHeap()
        const after = process.memoryUsage()
        trimmed(watch, after)
        const released = Math.max(0, before.rss - after.rss)
        totals.trims++
        totals.releasedBytes += released
        return Effect.as(Effect.logDebug(`heap trim: ${(released / 1048576).toFixed(1)} MiB given back`), true)
      })
    /** One look, and a trim if one is due; `false` once it is known that this process cannot trim. */
    const once: Effect.Effect<boolean> = Effect.suspend(() => {
      const before = look()
      if (!due(watch, before)) return Effect.succeed(true)
      if (trim === undefined) return Effect.succeed(false)
      if (trim !== null) return trimNow(trim, before)
      return Effect.flatMap(loadTrim, (loaded) => {
        trim = loaded
        if (loaded === undefined)
          return Effect.as(Effect.logDebug("heap trim: no malloc_trim in this C library"), false)
        return trimNow(loaded, before)
      })
    })
    yield* Effect.forkScoped(Effect.repeat(once, { schedule: Schedule.spaced(CHECK_EVERY), while: (going) => going }))
  })
)
