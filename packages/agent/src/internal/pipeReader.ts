/**
 * A command's stdout and stderr read as one stream, with one plain loop instead of a merge of two streams (which
 * costs a fiber hand-off per read): both pipes flow into one list in arrival order, and each pull takes everything
 * that piled up since the last one, so a consumer slower than the command gets few, large chunks.
 *
 * Bulk output is gathered as it arrives: consecutive reads of one pipe are copied into one buffer of `segment` bytes
 * from `allocate` (once they pass a few KiB), so a pull hands out a few segment-sized chunks instead of many pipe
 * reads that would be joined by a copy later, and the buffer can come with room for a message header in front
 * (`@cmdop/protocol/OutputHeadroom`). Small output is passed on as read.
 *
 * Backpressure: once `limit` bytes wait unread, both pipes are paused (nothing more is read, the command blocks in
 * its writes once the kernel pipe is full); a pull resumes them. So at most `limit` plus one read (a pipe buffer)
 * is held here. The stream ends once both pipes ended (end-of-file, a read error, or destruction); ending or
 * interrupting the stream destroys both pipes, so a command that keeps writing gets SIGPIPE.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { Readable } from "node:stream"
import type { OutputChunk } from "../ProcessRunner.js"

/** Reads of one pipe joined into one buffer once they add up to this much (smaller ones are not worth a copy). */
const JOIN_FROM = 16 * 1024

/** Event-loop turns a pull waits at most for output that keeps coming (each turn takes microseconds when idle). */
const MAX_TURNS = 8

/** Output waiting to be pulled: one read as it came, or consecutive reads of a pipe copied into `joined`. */
interface Pending {
  readonly pipe: OutputChunk["pipe"]
  readonly data: Buffer
  joined: Buffer | undefined
  used: number
}

export const read = (
  pipes: ReadonlyArray<readonly [Readable, OutputChunk["pipe"]]>,
  limit: number,
  segment: number = limit,
  allocate: (size: number) => Buffer = Buffer.allocUnsafeSlow
): Stream.Stream<OutputChunk> =>
  // Read by its pull (no stream stage): opened when read, the pipes destroyed when the reader's scope closes.
  PullStream.fromOpen(
    Effect.suspend(() => {
      let pending: Array<Pending> = []
      let size = 0
      // Appends one read: into the last entry's segment when it is of the same pipe and has room, else as an entry.
      const append = (pipe: OutputChunk["pipe"], data: Buffer) => {
        const last = pending.length > 0 ? pending[pending.length - 1]! : undefined
        if (last === undefined || last.pipe !== pipe)
          return void pending.push({ pipe, data, joined: undefined, used: 0 })
        if (last.joined === undefined) {
          if (last.data.length + data.length < JOIN_FROM || last.data.length >= segment)
            return void pending.push({ pipe, data, joined: undefined, used: 0 })
          last.joined = allocate(segment)
          last.joined.set(last.data, 0)
          last.used = last.data.length
        }
        const n = Math.min(segment - last.used, data.length)
        if (n > 0) {
          last.joined.set(n === data.length ? data : data.subarray(0, n), last.used)
          last.used += n
        }
        if (n < data.length) pending.push({ pipe, data: data.subarray(n), joined: undefined, used: 0 })
      }
      let open = pipes.length
      let paused = false
      let wake: (() => void) | undefined
      const notify = () => {
        const w = wake
        wake = undefined
        w?.()
      }
      for (const [readable, pipe] of pipes) {
        let ended = false
        const end = () => {
          if (ended) return
          ended = true
          open--
          notify()
        }
        readable.on("data", (data: Buffer) => {
          append(pipe, data)
          size += data.length
          if (size >= limit && !paused) {
            paused = true
            for (const [r] of pipes) r.pause()
          }
          notify()
        })
        readable.once("end", end)
        readable.once("error", end)
        readable.once("close", end)
      }
      const bytesOf = (p: Pending) => (p.joined === undefined ? p.data.length : p.used)
      // At the limit, a last entry smaller than a segment stays for the next pull while the pipes are open: it is
      // still filling, and sent now it would go out as a small message of its own.
      const take = (atLimit: boolean): Chunk.Chunk<OutputChunk> => {
        let n = pending.length
        if (atLimit && open > 0 && n > 1 && bytesOf(pending[n - 1]!) < segment) n--
        const out = Chunk.unsafeFromArray(
          pending
            .slice(0, n)
            .map((p): OutputChunk =>
              p.joined === undefined
                ? { pipe: p.pipe, data: p.data }
                : { pipe: p.pipe, data: p.joined.subarray(0, p.used) }
            )
        )
        pending = pending.slice(n)
        size = pending.length === 0 ? 0 : bytesOf(pending[0]!)
        if (paused) {
          paused = false
          for (const [r] of pipes) if (!r.destroyed) r.resume()
        }
        return out
      }
      // Less than `limit` waiting from pipes still open: one turn of the event loop first, so reads the kernel has
      // ready come in too (a command writing fast then goes out in fewer, larger messages; costs microseconds).
      // While each turn brings more (a command writing flat out), a few more turns, up to `limit`: bulk output then
      // goes out in full-size messages; output that pauses goes out after the first quiet turn, as before.
      const gather = Effect.async<Chunk.Chunk<OutputChunk>>((resume) => {
        let turns = 0
        let seen = size
        const turn = () => {
          if (size > seen && size < limit && open > 0 && ++turns < MAX_TURNS) {
            seen = size
            timer = setImmediate(turn)
          } else resume(Effect.succeed(take(size >= limit)))
        }
        let timer = setImmediate(turn)
        return Effect.sync(() => clearImmediate(timer))
      })
      const pull: Effect.Effect<Chunk.Chunk<OutputChunk>, Option.Option<never>> = Effect.suspend(() =>
        pending.length > 0
          ? size < limit && open > 0
            ? gather
            : Effect.succeed(take(true))
          : open === 0
            ? PullStream.end
            : Effect.async<void>((resume) => {
                wake = () => resume(Effect.void)
                return Effect.sync(() => {
                  wake = undefined
                })
              }).pipe(Effect.zipRight(pull))
      )
      // A plain scope finalizer (`Effect.addFinalizer` captures the fiber's refs and diffs them, on every exec).
      return Effect.flatMap(Effect.scope, (scope) =>
        Effect.as(
          Scope.addFinalizer(
            scope,
            Effect.sync(() => {
              for (const [r] of pipes) if (!r.destroyed) r.destroy()
            })
          ),
          pull
        )
      )
    })
  )
