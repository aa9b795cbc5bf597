/**
 * A session's output credit: how many bytes it may still send before the relay acknowledges some. The agent's one
 * flow-control mechanism, used by exec sessions and PTY pumps alike: the session's output pump takes credit for each
 * piece it sends, the relay's acks (`SessionAck` for stdout/stderr) give it back. A session without credit stops
 * reading its output, so its command blocks; other sessions carry on.
 *
 * The relay counts its side with an `Effect.Semaphore` (a sender waits for all the permits of a piece). The agent
 * takes whatever part of a piece the credit allows (`take` answers up to `max`), so it fills the window exactly and
 * never waits for more than one byte of credit; hence a transactional counter (`STM`) rather than a semaphore.
 */
import * as Effect from "effect/Effect"
import * as STM from "effect/STM"
import * as TRef from "effect/TRef"

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
  Effect.gen(function* () {
    const limit = Math.max(1, Math.floor(window))
    const available = yield* TRef.make(limit)
    const aborted = yield* TRef.make(false)
    return {
      take: (max) =>
        STM.commit(
          STM.gen(function* () {
            if (yield* TRef.get(aborted)) return 0
            const free = yield* TRef.get(available)
            if (free <= 0) return yield* STM.retry
            const n = Math.min(Math.max(1, Math.floor(max)), free)
            yield* TRef.set(available, free - n)
            return n
          })
        ),
      give: (bytes) =>
        bytes > 0 ? STM.commit(TRef.update(available, (free) => Math.min(limit, free + bytes))) : Effect.void,
      abort: STM.commit(TRef.set(aborted, true))
    }
  })
