/**
 * Stream resets on one shared connection, paced below what its server tolerates. Node's HTTP/2 server (nghttp2)
 * answers more than 1,000 resets (RST_STREAM) in a burst, then more than 33 a second, with a GOAWAY that fails every
 * call on the connection. A relay node's calls to another node all share one connection, and a call that has to be
 * reset at last (its in-band cancel was not read: the owning node's session was not reading its input) can be made
 * by any tenant: a thousand of them reset at once would cut every other tenant's sessions between the two nodes.
 * Through a pacer, resets go at once while the burst allows and then at `perSecond`, in order; the calls waiting
 * meanwhile are calls their clients already left.
 */

export interface ResetPacer {
  /** Runs `reset` now if the pace allows, else once it does (resets run in the order they came). */
  readonly pace: (reset: () => void) => void
  /** Resets waiting for their turn. */
  readonly waiting: () => number
}

export interface Options {
  /** Resets allowed at once (default 100: a tenth of the server's burst). */
  readonly burst?: number
  /** Resets a second after the burst (default 20, below the server's 33). */
  readonly perSecond?: number
}

/** A token bucket: `burst` tokens, refilled at `perSecond`; a reset takes one. */
export const make = (options: Options = {}): ResetPacer => {
  const burst = options.burst ?? 100
  const perSecond = options.perSecond ?? 20
  let tokens = burst
  let last = performance.now()
  const queue: Array<() => void> = []
  let timer: ReturnType<typeof setTimeout> | undefined

  const refill = () => {
    const now = performance.now()
    tokens = Math.min(burst, tokens + ((now - last) * perSecond) / 1000)
    last = now
  }

  const drain = () => {
    timer = undefined
    refill()
    while (queue.length > 0 && tokens >= 1) {
      tokens -= 1
      queue.shift()!()
    }
    if (queue.length > 0) {
      timer = setTimeout(drain, Math.ceil(((1 - tokens) * 1000) / perSecond))
      timer.unref()
    }
  }

  return {
    pace: (reset) => {
      queue.push(reset)
      if (timer === undefined) drain()
    },
    waiting: () => queue.length
  }
}
