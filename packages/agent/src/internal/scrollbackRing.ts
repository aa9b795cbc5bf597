/**
 * A PTY session's scrollback: a byte ring of its recent output, addressed by absolute offsets in the session's whole output
 * stream: it holds the bytes `[oldest, total)`, at most `capacity` of them; appending past the capacity drops the
 * oldest bytes. Memory grows with what is held (doubling), up to `capacity`.
 */

/** The last `capacity` bytes of a session's output, addressed by absolute offsets. */
export class ScrollbackRing {
  private buffer: Buffer = Buffer.alloc(0)
  private start = 0
  private end = 0

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`ring capacity must be positive, got ${capacity}`)
  }

  /** The offset of the oldest byte still held. */
  get oldest(): number {
    return this.start
  }

  /** Bytes appended so far: the offset of the next byte. */
  get total(): number {
    return this.end
  }

  /** Appends `data` (copied). */
  append(data: Uint8Array): void {
    let bytes = data
    if (bytes.length === 0) return
    if (bytes.length >= this.capacity) {
      this.grow(this.capacity)
      this.start = this.end + bytes.length - this.capacity
      this.end = this.start
      bytes = bytes.subarray(bytes.length - this.capacity)
    } else {
      const held = this.end + bytes.length - this.start
      if (held > this.buffer.length && this.buffer.length < this.capacity)
        this.grow(Math.min(this.capacity, Math.max(held, this.buffer.length * 2, 4096)))
    }
    this.put(this.end, bytes)
    this.end += bytes.length
    this.start = Math.max(this.start, this.end - this.buffer.length)
  }

  /**
   * A copy of at most `max` bytes starting at `from`, clamped to `[oldest, total]`, with the offset it really
   * starts at; empty data when nothing is held from there.
   */
  read(from: number, max: number): { readonly offset: number; readonly data: Buffer } {
    const offset = Math.min(Math.max(from, this.start), this.end)
    const length = Math.max(0, Math.min(max, this.end - offset))
    const data = Buffer.allocUnsafe(length)
    const size = this.buffer.length
    let copied = 0
    while (copied < length) {
      const at = (offset + copied) % size
      const n = Math.min(length - copied, size - at)
      this.buffer.copy(data, copied, at, at + n)
      copied += n
    }
    return { offset, data }
  }

  /** Writes `bytes` at absolute offset `at` (position `at mod size`). */
  private put(at: number, bytes: Uint8Array): void {
    const size = this.buffer.length
    let written = 0
    while (written < bytes.length) {
      const pos = (at + written) % size
      const n = Math.min(bytes.length - written, size - pos)
      this.buffer.set(bytes.subarray(written, written + n), pos)
      written += n
    }
  }

  /** Re-lays the held bytes out in a buffer of `size` bytes, keeping position = offset mod size. */
  private grow(size: number): void {
    if (size <= this.buffer.length) return
    const held = this.read(this.start, this.end - this.start).data
    this.buffer = Buffer.alloc(size)
    this.put(this.start, held)
  }
}
