/**
 * How session output is cut into `SessionOutput` messages: pipe reads are joined into fewer, larger messages and
 * split again to fit `MAX_CHUNK` and the session's credit.
 */
import * as Effect from "effect/Effect"
import type { OutputChunk } from "../ProcessRunner.js"
import type { Credit } from "./credit.js"

/** Largest `SessionOutput.data` the engine sends (256 KiB). */
export const MAX_CHUNK = 256 * 1024

/** Joins consecutive chunks of the same pipe, up to `MAX_CHUNK` each, keeping the order of stdout and stderr. */
export const coalesce = (chunks: Iterable<OutputChunk>): ReadonlyArray<OutputChunk> => {
  const out: Array<OutputChunk> = []
  let pipe: OutputChunk["pipe"] | undefined
  let parts: Array<Uint8Array> = []
  let size = 0
  const flush = () => {
    if (pipe !== undefined && parts.length > 0)
      out.push({ pipe, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts, size) })
    parts = []
    size = 0
  }
  for (const chunk of chunks) {
    if (chunk.pipe !== pipe || size + chunk.data.length > MAX_CHUNK) flush()
    pipe = chunk.pipe
    parts.push(chunk.data)
    size += chunk.data.length
  }
  flush()
  return out
}

/**
 * Sends `data` as pieces of at most `MAX_CHUNK` bytes, each once the credit allows it; `send` gets each piece and
 * its position in `data`. Stops (dropping the rest) once the credit is aborted.
 */
export const sendWithin = <E>(
  data: Uint8Array,
  credit: Credit,
  send: (piece: Uint8Array, at: number) => Effect.Effect<void, E>
): Effect.Effect<void, E> =>
  Effect.gen(function* () {
    let offset = 0
    while (offset < data.length) {
      const granted = yield* credit.take(Math.min(MAX_CHUNK, data.length - offset))
      if (granted === 0) return
      yield* send(data.subarray(offset, offset + granted), offset)
      offset += granted
    }
  })
