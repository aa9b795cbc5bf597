/**
 * A command's stdout and stderr read as one stream, with one plain loop instead of a merge of two streams (which
 * costs a fiber hand-off per read): both pipes flow into one list in arrival order, and each pull takes everything
 * that piled up since the last one, so a consumer slower than the command gets few, large chunks.
 *
 * Backpressure: once `limit` bytes wait unread, both pipes are paused (nothing more is read, the command blocks in
 * its writes once the kernel pipe is full); a pull resumes them. So at most `limit` plus one read (a pipe buffer)
 * is held here. The stream ends once both pipes ended (end-of-file, a read error, or destruction); ending or
 * interrupting the stream destroys both pipes, so a command that keeps writing gets SIGPIPE.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Readable } from "node:stream"
import type { OutputChunk } from "../ProcessRunner.js"

export const read = (
  pipes: ReadonlyArray<readonly [Readable, OutputChunk["pipe"]]>,
  limit: number
): Stream.Stream<OutputChunk> =>
  Stream.suspend(() => {
    let pending: Array<OutputChunk> = []
    let size = 0
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
        pending.push({ pipe, data })
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
    const take = (): Chunk.Chunk<OutputChunk> => {
      const out = Chunk.unsafeFromArray(pending)
      pending = []
      size = 0
      if (paused) {
        paused = false
        for (const [r] of pipes) if (!r.destroyed) r.resume()
      }
      return out
    }
    // Less than `limit` waiting from pipes still open: one turn of the event loop first, so reads the kernel has
    // ready come in too (a command writing fast then goes out in fewer, larger messages; costs microseconds).
    const gather = Effect.async<Chunk.Chunk<OutputChunk>>((resume) => {
      const timer = setImmediate(() => resume(Effect.succeed(take())))
      return Effect.sync(() => clearImmediate(timer))
    })
    const pull: Effect.Effect<Chunk.Chunk<OutputChunk>, Option.Option<never>> = Effect.suspend(() =>
      pending.length > 0
        ? size < limit && open > 0
          ? gather
          : Effect.succeed(take())
        : open === 0
          ? Effect.fail(Option.none())
          : Effect.async<void>((resume) => {
              wake = () => resume(Effect.void)
              return Effect.sync(() => {
                wake = undefined
              })
            }).pipe(Effect.zipRight(pull))
    )
    return Stream.repeatEffectChunkOption(pull).pipe(
      Stream.ensuring(
        Effect.sync(() => {
          for (const [r] of pipes) if (!r.destroyed) r.destroy()
        })
      )
    )
  })
