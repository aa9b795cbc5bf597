/**
 * The relay's copy of an interactive session's recent output, which late viewers and reconnecting clients replay:
 * chunks keyed by their offset in the session's whole output stream, at most `capacity` bytes (oldest chunks
 * dropped first). The agent keeps its own ring, which refills this one after a relay restart.
 *
 * A keystroke's echo is typically one chunk of a few bytes, so a ring can hold hundreds of thousands of chunks: the
 * live chunks are `chunks[head..]` (dropping the oldest moves `head`; the array is compacted now and then), and a
 * read from an offset finds its first chunk by binary search. A viewer that is up to date costs O(log n) per read,
 * not a walk over the whole ring.
 */
export interface Chunk {
  readonly offset: number
  readonly data: Uint8Array
}

export class ReplayRing {
  private chunks: Array<Chunk> = []
  /** Index of the oldest chunk still held. */
  private head = 0
  private bytes = 0
  /** Offset of the next byte the session will produce (as far as the relay has seen). */
  end = 0

  constructor(readonly capacity: number = 1024 * 1024) {}

  /** Offset of the oldest byte still held. */
  get start(): number {
    return this.head >= this.chunks.length ? this.end : this.chunks[this.head]!.offset
  }

  /**
   * Appends a chunk. Bytes the ring already has (a replay overlapping what it saw) are dropped; a chunk that
   * starts past `end` (the agent's ring had lost the bytes in between) restarts the ring there.
   */
  push(chunk: Chunk): Chunk | undefined {
    const chunkEnd = chunk.offset + chunk.data.byteLength
    if (chunkEnd <= this.end) return undefined
    let fresh = chunk
    if (chunk.offset < this.end) fresh = { offset: this.end, data: chunk.data.subarray(this.end - chunk.offset) }
    else if (chunk.offset > this.end) {
      this.chunks = []
      this.head = 0
      this.bytes = 0
    }
    this.chunks.push(fresh)
    this.bytes += fresh.data.byteLength
    this.end = chunkEnd
    while (
      this.chunks.length - this.head > 1 &&
      this.bytes - this.chunks[this.head]!.data.byteLength >= this.capacity
    ) {
      this.bytes -= this.chunks[this.head]!.data.byteLength
      this.head++
    }
    // Compact once the dropped prefix is most of the array (amortised O(1) per chunk).
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head)
      this.head = 0
    }
    return fresh
  }

  /** Everything from `offset` (clamped to `start`) to `end`, as chunks. */
  from(offset: number): ReadonlyArray<Chunk> {
    const chunks = this.chunks
    if (offset >= this.end || this.head >= chunks.length) return []
    const at = Math.max(offset, chunks[this.head]!.offset)
    // The first chunk that ends past `at`.
    let lo = this.head
    let hi = chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const c = chunks[mid]!
      if (c.offset + c.data.byteLength <= at) lo = mid + 1
      else hi = mid
    }
    const out: Array<Chunk> = []
    for (let i = lo; i < chunks.length; i++) {
      const c = chunks[i]!
      out.push(c.offset >= at ? c : { offset: at, data: c.data.subarray(at - c.offset) })
    }
    return out
  }
}
