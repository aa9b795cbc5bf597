/**
 * The audit log's file writer: one descriptor opened with `O_APPEND` and kept open, each line one synchronous
 * `write(2)`, rotation by size. Plain `node:fs` on purpose (see `AuditLog.makeFile`): the hot path is a single
 * system call, with no thread-pool round trip and no stat/open/close per line.
 *
 * The size is tracked in memory from the descriptor's `fstat` at open. Before a rotation, and at most once per
 * `RECHECK_MS`, the path is compared with the open file: if another process rotated it (or the directory was
 * removed and made again) the writer reopens the path, so lines go where a reader looks for them.
 */
import * as nodeFs from "node:fs"

/** How often (ms) the path is compared with the open descriptor when no rotation is due. */
export const RECHECK_MS = 1000

const FLAGS = nodeFs.constants.O_WRONLY | nodeFs.constants.O_APPEND | nodeFs.constants.O_CREAT

export const isNotFound = (error: unknown): boolean => (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT"

export class Writer {
  private fd: number | undefined
  private size = 0
  private ino = 0
  private dev = 0
  private checkedAt = 0

  constructor(
    readonly file: string,
    private readonly options: { readonly maxBytes: number; readonly keep: number }
  ) {}

  get isOpen(): boolean {
    return this.fd !== undefined
  }

  /** Appends `bytes` (one whole line) with one `write(2)`; opens the file first if needed. Throws what fs throws. */
  write(bytes: Uint8Array, now: number): void {
    if (this.fd === undefined) this.open(now)
    else if (now - this.checkedAt >= RECHECK_MS) this.recheck(now)
    if (this.size > 0 && this.size + bytes.length > this.options.maxBytes) {
      // Another writer may have rotated already: look at the path before rotating it.
      this.recheck(now)
      if (this.size > 0 && this.size + bytes.length > this.options.maxBytes) {
        this.close()
        this.rotate()
        this.open(now)
      }
    }
    let written = 0
    // A regular file takes the whole line in one call; the loop only guards against a short write (disk full).
    while (written < bytes.length) written += nodeFs.writeSync(this.fd!, bytes, written)
    this.size += bytes.length
  }

  /** Every retained file's text, oldest first (`audit.log.<keep>` … `audit.log.1`, then `audit.log`). */
  readAll(): ReadonlyArray<{ readonly name: string; readonly text: string }> {
    const { keep } = this.options
    const names = [...Array.from({ length: keep }, (_, i) => `${this.file}.${keep - i}`), this.file]
    return names.flatMap((name) => {
      try {
        return [{ name, text: nodeFs.readFileSync(name, "utf8") }]
      } catch (error) {
        if (isNotFound(error)) return []
        throw error
      }
    })
  }

  close(): void {
    if (this.fd === undefined) return
    const fd = this.fd
    this.fd = undefined
    nodeFs.closeSync(fd)
  }

  private open(now: number): void {
    const fd = nodeFs.openSync(this.file, FLAGS, 0o600)
    try {
      // An older file may have been made with a looser mode.
      nodeFs.fchmodSync(fd, 0o600)
      const info = nodeFs.fstatSync(fd)
      this.size = info.size
      this.ino = info.ino
      this.dev = info.dev
    } catch (error) {
      nodeFs.closeSync(fd)
      throw error
    }
    this.fd = fd
    this.checkedAt = now
  }

  /** Reopens when the path no longer names the open file; refreshes the size from the file otherwise. */
  private recheck(now: number): void {
    this.checkedAt = now
    let info: nodeFs.Stats | undefined
    try {
      info = nodeFs.statSync(this.file)
    } catch (error) {
      if (!isNotFound(error)) throw error
    }
    if (info !== undefined && info.ino === this.ino && info.dev === this.dev) {
      this.size = info.size
      return
    }
    this.close()
    this.open(now)
  }

  private rotate(): void {
    const { keep } = this.options
    const ignoreNotFound = (f: () => void) => {
      try {
        f()
      } catch (error) {
        if (!isNotFound(error)) throw error
      }
    }
    if (keep === 0) return ignoreNotFound(() => nodeFs.unlinkSync(this.file))
    for (let n = keep - 1; n >= 1; n--)
      ignoreNotFound(() => nodeFs.renameSync(`${this.file}.${n}`, `${this.file}.${n + 1}`))
    ignoreNotFound(() => nodeFs.renameSync(this.file, `${this.file}.1`))
  }
}
