/**
 * A session's output credit: how many bytes it may still send before the relay acknowledges some. The agent's one
 * flow-control mechanism, used by exec sessions and PTY pumps alike: the session's output pump takes credit for each
 * piece it sends, the relay's acks (`SessionAck` for stdout/stderr) give it back. A session without credit stops
 * reading its output, so its command blocks; other sessions carry on.
 *
 * The relay counts its side with an `Effect.Semaphore` (a sender waits for all the permits of a piece). The agent
 * takes whatever part of a piece the credit allows (`take` answers up to `max`), so it fills the window exactly and
 * never waits for more than one byte of credit. A plain counter and one waiting taker (a session has one output
 * pump): a take with credit free costs no more than reading a number, which matters on the per-message path.
 */
import * as Effect from "effect/Effect"

export interface Credit {
  /** Waits for credit and takes up to `max` bytes of it; 0 once aborted (the output is then to be dropped). */
  readonly take: (max: number) => Effect.Effect<number>
  /** Returns `bytes` of credit, never beyond the window (a relay that acks too much gains nothing). */
  readonly give: (bytes: number) => Effect.Effect<void>
  /** The reader is gone: `take` answers 0 from now on, including a `take` already waiting. */
  readonly abort: Effect.Effect<void>
}

/** Credit for a window of `window` bytes (at least 1), all of it available. */
export const make = (window: number): Effect.Effect<Credit> =>
  Effect.sync(() => {
    const limit = Math.max(1, Math.floor(window))
    let available = limit
    let aborted = false
    // Takers waiting for credit, woken (to try again) by `give` and `abort`.
    const waiting = new Set<() => void>()
    const wake = () => {
      const all = [...waiting]
      waiting.clear()
      for (const f of all) f()
    }
    const tryTake = (max: number): number | undefined => {
      if (aborted) return 0
      if (available <= 0) return undefined
      const n = Math.min(Math.max(1, Math.floor(max)), available)
      available -= n
      return n
    }
    const take = (max: number): Effect.Effect<number> =>
      Effect.suspend(() => {
        const now = tryTake(max)
        if (now !== undefined) return Effect.succeed(now)
        return Effect.async<number>((resume) => {
          const retry = () => {
            const n = tryTake(max)
            if (n === undefined) waiting.add(retry)
            else resume(Effect.succeed(n))
          }
          waiting.add(retry)
          return Effect.sync(() => {
            waiting.delete(retry)
          })
        })
      })
    return {
      take,
      give: (bytes) =>
        Effect.sync(() => {
          if (!(bytes > 0)) return
          available = Math.min(limit, available + bytes)
          wake()
        }),
      abort: Effect.sync(() => {
        aborted = true
        wake()
      })
    }
  })
