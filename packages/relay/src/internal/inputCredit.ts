/**
 * A PTY session's input credit on the relay: keystroke bytes sent to the agent and not yet acknowledged, at most the
 * connection's window. `take(n)` waits until `n` bytes are free and takes them all; `release` gives back what the
 * agent acknowledged (never more than was taken: an agent acking too much gains no window).
 *
 * A plain counter, not an `Effect.Semaphore`: the semaphore's `take` is an interruptible wait on every call (its
 * canceler wrapped in `onInterrupt`, ~7 more runtime steps), and every keystroke takes credit. A wait here has no
 * canceler: the waker only resumes the taker, which looks again itself, so a waker left by an interrupted take
 * resumes nothing and takes nothing (Effect ignores a resume after the interruption), and the next release drops it.
 */
import * as Effect from "effect/Effect"

export class InputCredit {
  private taken = 0
  /** Takers waiting for a release. */
  private readonly waiting = new Set<() => void>()

  constructor(readonly window: number) {}

  /** Waits until `n` bytes of credit are free, then takes them. */
  take(n: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.window - this.taken >= n) {
        this.taken += n
        return Effect.void
      }
      // The look and the registration in one synchronous step, so a release cannot slip in between.
      const released = Effect.async<void>((resume) => {
        if (this.window - this.taken >= n) return resume(Effect.void)
        this.waiting.add(() => resume(Effect.void))
      })
      return Effect.flatMap(released, () => this.take(n))
    })
  }

  /** The agent acknowledged `bytes`: that much credit is free again, and every waiting taker looks again. */
  release(bytes: number): void {
    this.taken = Math.max(0, this.taken - bytes)
    if (this.waiting.size === 0) return
    const all = [...this.waiting]
    this.waiting.clear()
    for (const wake of all) wake()
  }
}
