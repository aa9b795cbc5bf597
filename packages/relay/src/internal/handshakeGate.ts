/**
 * How many agent handshakes a relay works on at once.
 *
 * A handshake is several steps of store work (the key check, the machine's registration, marking it online). A
 * cluster node admits each step on its own (`cluster/ClusterStore.ts`: 8 at a time under the pool's 10
 * connections, 256 waiting, 10 s at most); when agents arrive faster than that serves them — a dead node's agents
 * coming over, thousands of machines at once — steps wait behind the steps of every other handshake in flight,
 * and a handshake refused at its second or third step has spent the first for nothing while its agent retries:
 * 10,000 agents on three nodes reached ~5,000 in 4 minutes, with as many refused handshakes.
 *
 * The gate admits whole handshakes: {@link MAX_RUNNING} do their store work at once, up to {@link MAX_WAITING}
 * more wait in arrival order (they have done nothing yet), and the rest are refused at once with UNAVAILABLE,
 * before any work: their agents back off with jitter and try again, or try another node. The line is short
 * enough to be served well within the agent's wait for `Welcome` (15 s). Waiting for the agent's `Hello` is
 * outside the gate (a slow agent holds no turn).
 */
import { RelayError } from "@cmdop/domain/RelayError"
import * as Effect from "effect/Effect"

/** Handshakes doing store work at once: below the store's pool (10 connections), so calls and heartbeats get one. */
export const MAX_RUNNING = 8

/** Handshakes waiting for a turn; one more is refused at once. */
export const MAX_WAITING = 64

export class HandshakeGate {
  /** Handshakes doing their work now. */
  private running = 0
  /** Handshakes waiting for a turn, in arrival order: each is handed the turn of one that ends (`pass`). */
  private readonly line = new Set<() => void>()

  constructor(
    readonly maxRunning: number = MAX_RUNNING,
    readonly maxWaiting: number = MAX_WAITING
  ) {}

  /** Handshakes running or waiting now (for `/metrics` and tests). */
  get size(): number {
    return this.running + this.line.size
  }

  /** Runs `work` in its turn, or fails at once with UNAVAILABLE when the line is full. */
  within<A, E, R>(server: string, work: Effect.Effect<A, E, R>): Effect.Effect<A, E | RelayError, R> {
    // Taking a turn and arranging to give it back are one step: an interruption in between would lose a turn.
    return Effect.uninterruptibleMask((restore): Effect.Effect<A, E | RelayError, R> => {
      if (this.size >= this.maxRunning + this.maxWaiting)
        return Effect.fail(
          new RelayError({
            reason: "Unavailable",
            server,
            detail: `this relay is taking ${this.size} other agents' connections right now; the agent tries again in a moment`
          })
        )
      return Effect.zipRight(
        restore(this.turn()),
        Effect.ensuring(
          restore(work),
          Effect.sync(() => this.pass())
        )
      )
    })
  }

  /**
   * A turn: at once while fewer than `maxRunning` run, else after the ones ahead in line. First come, first served:
   * a newcomer never takes a turn from one already waiting (Effect's semaphore lets it, and under a steady stream
   * of arrivals a waiting handshake could wait past the agent's patience).
   */
  private turn(): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (this.running < this.maxRunning) {
        this.running++
        return resume(Effect.void)
      }
      let handed = false
      const waiter = () => {
        handed = true
        resume(Effect.void)
      }
      this.line.add(waiter)
      // Gone while waiting (the agent hung up): out of the line, or, if a turn was just handed to it, passed on.
      return Effect.sync(() => {
        if (handed) this.pass()
        else this.line.delete(waiter)
      })
    })
  }

  /** A turn ends: the first in line gets it, else one fewer runs. */
  private pass(): void {
    for (const next of this.line) {
      this.line.delete(next)
      return next()
    }
    this.running--
  }
}
