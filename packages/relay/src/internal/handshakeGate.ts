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
import { Turns } from "./turns.js"

/** Handshakes doing store work at once: below the store's pool (10 connections), so calls and heartbeats get one. */
export const MAX_RUNNING = 8

/** Handshakes waiting for a turn; one more is refused at once. */
export const MAX_WAITING = 64

export class HandshakeGate {
  /** First come, first served (`turns.ts`): a newcomer never takes a turn from one already waiting. */
  private readonly turns: Turns

  constructor(
    readonly maxRunning: number = MAX_RUNNING,
    readonly maxWaiting: number = MAX_WAITING
  ) {
    this.turns = new Turns(maxRunning)
  }

  /** Handshakes running or waiting now (for `/metrics` and tests). */
  get size(): number {
    return this.turns.running + this.turns.waiting
  }

  /** Runs `work` in its turn, or fails at once with UNAVAILABLE when the line is full. */
  within<A, E, R>(server: string, work: Effect.Effect<A, E, R>): Effect.Effect<A, E | RelayError, R> {
    return Effect.suspend((): Effect.Effect<A, E | RelayError, R> =>
      this.size >= this.maxRunning + this.maxWaiting
        ? Effect.fail(
            new RelayError({
              reason: "Unavailable",
              server,
              detail: `this relay is taking ${this.size} other agents' connections right now; the agent tries again in a moment`
            })
          )
        : this.turns.run(work)
    )
  }
}
