/**
 * Turns at a limited resource, first come first served: at most `limit` hold one at once, and a turn given back
 * goes straight to the first in line.
 *
 * Effect's semaphore is not used for this on purpose. A permit it frees is taken by whoever asks next, so a newcomer
 * can go ahead of those already waiting; and a waiter woken after another took the permit waits again nested
 * inside its first wait (one more level of its fiber's stack each time). Under a connect storm, with hundreds
 * waiting, that cost a cluster node a tenth of its CPU in walking those ever deeper failure causes.
 */
import * as Effect from "effect/Effect"

export class Turns {
  /** Turns held now. */
  private held = 0
  /** Waiting, in arrival order: each is handed the turn of one that is given back (`release`). */
  private readonly line = new Set<() => void>()

  constructor(readonly limit: number) {}

  /** Turns held now. */
  get running(): number {
    return this.held
  }

  /** Waiting for a turn now. */
  get waiting(): number {
    return this.line.size
  }

  /**
   * A turn: at once while fewer than `limit` are held, else after the ones ahead in line. Whoever takes one must
   * `release` it, so take and arrange the release in one uninterruptible step (see `run`). Interrupted while
   * waiting, it leaves the line (or, if a turn was just handed to it, passes that on).
   */
  readonly take: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.held < this.limit) {
      this.held++
      return resume(Effect.void)
    }
    let handed = false
    const waiter = () => {
      handed = true
      resume(Effect.void)
    }
    this.line.add(waiter)
    return Effect.sync(() => {
      if (handed) this.release()
      else this.line.delete(waiter)
    })
  })

  /** A turn ends: the first in line gets it, else one fewer is held. */
  release(): void {
    for (const next of this.line) {
      this.line.delete(next)
      return next()
    }
    this.held--
  }

  /** `work` in a turn, waited for as long as it takes; the turn is given back however `work` ends. */
  run<A, E, R>(work: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return this.runAfter(this.take, work)
  }

  /**
   * `work` in the turn `wait` waits for (`take`, or `take` with a timeout): the turn is given back however `work`
   * ends, and a wait that fails or is interrupted holds none.
   */
  runAfter<A, E, R, E2, R2>(
    wait: Effect.Effect<void, E2, R2>,
    work: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | E2, R | R2> {
    return Effect.uninterruptibleMask((restore) => {
      const run = Effect.ensuring(
        restore(work),
        Effect.sync(() => this.release())
      )
      // A free turn is taken at once, without `wait` (whose timeout, if any, races fibers: only worth it to wait).
      if (this.held < this.limit && this.line.size === 0) {
        this.held++
        return run
      }
      return Effect.zipRight(restore(wait), run)
    })
  }
}
