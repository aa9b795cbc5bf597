/**
 * The relay's copy of an interactive session's recent output, which late viewers and reconnecting clients replay:
 * chunks keyed by their offset in the session's whole output stream, at most `capacity` bytes (oldest chunks
 * dropped first). The agent keeps its own ring, which refills this one after a relay restart.
 */
export interface Chunk {
  readonly offset: number
  readonly data: Uint8Array
}

export class ReplayRing {
  private chunks: Array<Chunk> = []
  private bytes = 0
  /** Offset of the next byte the session will produce (as far as the relay has seen). */
  end = 0

  constructor(readonly capacity: number = 1024 * 1024) {}

  /** Offset of the oldest byte still held. */
  get start(): number {
    return this.chunks.length === 0 ? this.end : this.chunks[0]!.offset
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
      this.bytes = 0
    }
    this.chunks.push(fresh)
    this.bytes += fresh.data.byteLength
    this.end = chunkEnd
    while (this.chunks.length > 1 && this.bytes - this.chunks[0]!.data.byteLength >= this.capacity) {
      this.bytes -= this.chunks.shift()!.data.byteLength
    }
    return fresh
  }

  /** Everything from `offset` (clamped to `start`) to `end`, as chunks. */
  from(offset: number): ReadonlyArray<Chunk> {
    const at = Math.max(offset, this.start)
    const out: Array<Chunk> = []
    for (const c of this.chunks) {
      const cEnd = c.offset + c.data.byteLength
      if (cEnd <= at) continue
      out.push(c.offset >= at ? c : { offset: at, data: c.data.subarray(at - c.offset) })
    }
    return out
  }
}
