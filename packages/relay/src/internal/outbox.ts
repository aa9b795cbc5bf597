/**
 * What the relay has to send one agent, waiting for the agent's stream to take it: a plain FIFO read as a
 * `PullStream` (one pull takes all that waits, up to {@link MAX_PULL} messages). Every keystroke a viewer types
 * and every acknowledgement passes through it, so it holds no fiber, queue or stream stage per message.
 *
 * Unbounded, as the queue it replaces: what is sent to an agent is bounded by the sessions' credit windows and the
 * relay's per-connection limits, not here. Closing drops what still waits (the connection is over) and ends the
 * stream with the pull it is given (its end, or why the relay closed the connection).
 */
import * as PullStream from "@cmdop/grpc/PullStream"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"

/** The most messages one pull takes. */
const MAX_PULL = 64

export interface Outbox<A, E> {
  /** Queues `message`; dropped once the outbox is closed. */
  readonly push: (message: A) => void
  /** Drops what waits: the stream's next pulls answer `ending` (the first close wins). */
  readonly close: (ending: PullStream.Pull<A, E>) => void
  /** The messages in order; read by one reader. */
  readonly stream: Stream.Stream<A, E>
}

export const make = <A, E>(): Outbox<A, E> => {
  let waiting: Array<A> = []
  let closed: PullStream.Pull<A, E> | undefined
  let wake: (() => void) | undefined
  const signal = () => {
    const f = wake
    wake = undefined
    f?.()
  }
  const take = (): PullStream.Pull<A, E> | undefined => {
    if (closed !== undefined) return closed
    if (waiting.length === 0) return undefined
    if (waiting.length <= MAX_PULL) {
      const all = waiting
      waiting = []
      return Effect.succeed(Chunk.unsafeFromArray(all))
    }
    return Effect.succeed(Chunk.unsafeFromArray(waiting.splice(0, MAX_PULL)))
  }
  const pull = PullStream.parking(take, (f) => {
    wake = f
  })
  return {
    push: (message) => {
      if (closed !== undefined) return
      waiting.push(message)
      signal()
    },
    close: (ending) => {
      if (closed !== undefined) return
      closed = ending
      waiting = []
      signal()
    },
    stream: PullStream.fromPull(() => pull)
  }
}
