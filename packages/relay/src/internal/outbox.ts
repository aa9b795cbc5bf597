/**
 * What the relay has to send one agent, waiting for the agent's stream to take it: a plain FIFO read as a
 * `PullStream` (one pull takes all that waits, up to {@link MAX_PULL} messages). Every keystroke a viewer types
 * and every acknowledgement passes through it, so it holds no fiber, queue or stream stage per message.
 *
 * Bounded by what goes in, not here: keystrokes and stdin by the sessions' credit windows, sessions by the relay's
 * per-connection limits. What no window bounds — a client's resizes and signals, the answers to the agent's
 * heartbeats and acknowledgements the agent's own messages cause — is `merge`d: while one such message waits, the
 * next of its kind is folded into it instead of queued behind it (the latest size; one pending signal of a name, as
 * Unix keeps it; the sum of the credit). So a client flooding resizes, or an agent flooding heartbeats while it
 * reads nothing, costs one waiting message, not memory without end. Closing drops what still waits (the
 * connection is over) and ends the stream with the pull it is given (its end, or why the relay closed it).
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
  /**
   * Queues `message` — unless a message pushed with the same `key` still waits: that one becomes
   * `fold(waiting, message)`, in its place. Dropped once the outbox is closed.
   */
  readonly merge: (key: string, message: A, fold: (waiting: A, next: A) => A) => void
  /** Drops what waits: the stream's next pulls answer `ending` (the first close wins). */
  readonly close: (ending: PullStream.Pull<A, E>) => void
  /** The messages in order; read by one reader. */
  readonly stream: Stream.Stream<A, E>
  /**
   * From now on the messages go straight into `sink` (what waits first), in order, as they come: no reader pulls,
   * so no fiber waits for them. While the sink asks to wait (`write` answered `false`) they wait here, merged as
   * above, until it is `ready`. The close ends the sink with its ending.
   */
  readonly drainTo: (sink: PullStream.Sink<A, E>) => void
}

export const make = <A, E>(): Outbox<A, E> => {
  let waiting: Array<A> = []
  /**
   * Where each keyed message waits in `waiting` (cleared whenever `waiting` is taken or shifted); made by the first
   * `merge` (most connections idle with none).
   */
  let keyed: Map<string, number> | undefined
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
    keyed = undefined
    if (waiting.length <= MAX_PULL) {
      const all = waiting
      waiting = []
      return Effect.succeed(Chunk.unsafeFromArray(all))
    }
    return Effect.succeed(Chunk.unsafeFromArray(waiting.splice(0, MAX_PULL)))
  }
  // Made when a reader opens the stream: an agent's outbox is drained into its call instead (`drainTo`), and a
  // parking pull costs each idle connection its closures and effects.
  const park = (f: (() => void) | undefined) => {
    wake = f
  }
  // Push mode (`drainTo`): the sink, and whether it asked to wait.
  let sink: PullStream.Sink<A, E> | undefined
  let blocked = false
  /** Writes what waits until the sink asks to wait (then waits for it to be ready). */
  const flush = () => {
    blocked = false
    if (closed !== undefined || sink === undefined || waiting.length === 0) return
    const all = waiting
    waiting = []
    keyed = undefined
    for (let i = 0; i < all.length; i++) {
      if (!sink.write(all[i]!)) {
        if (i + 1 < all.length) waiting = all.slice(i + 1)
        blocked = true
        sink.ready(flush)
        return
      }
    }
  }
  /** In push mode with nothing waiting and a sink that takes more: written at once. */
  const writeThrough = (message: A): boolean => {
    if (sink === undefined || blocked || waiting.length > 0) return false
    if (!sink.write(message)) {
      blocked = true
      sink.ready(flush)
    }
    return true
  }
  return {
    push: (message) => {
      if (closed !== undefined || writeThrough(message)) return
      waiting.push(message)
      signal()
    },
    merge: (key, message, fold) => {
      if (closed !== undefined) return
      const at = keyed?.get(key)
      if (at !== undefined) {
        waiting[at] = fold(waiting[at]!, message)
        return
      }
      if (writeThrough(message)) return
      keyed ??= new Map()
      keyed.set(key, waiting.length)
      waiting.push(message)
      signal()
    },
    close: (ending) => {
      if (closed !== undefined) return
      closed = ending
      waiting = []
      keyed = undefined
      signal()
      sink?.end(ending)
    },
    stream: PullStream.fromPull(() => PullStream.parking(take, park)),
    drainTo: (to) => {
      sink = to
      if (closed !== undefined) to.end(closed)
      else flush()
    }
  }
}
