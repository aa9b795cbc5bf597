/**
 * The pull of a producer that calls back (a Node stream, a plain FIFO), and its twin that waits with a deadline: what
 * `PullStream` readers take from grpc-js calls and queues without a fiber between producer and reader.
 */
import type * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Pull } from "./PullStream.js"

/**
 * The pull of a producer that calls back (a Node stream, a plain FIFO): `attempt` answers what is there now — a
 * chunk, the end, a failure — or `undefined` for nothing yet. Then the pull hands `park` a waker and waits for the
 * producer to call it (a waiting reader is woken at most once per waker; a waker may outlive a reader that went
 * away, and calling it then does nothing). `attempt` runs again inside the wait before it parks: what arrived after
 * the first look and before the registration is not missed. Such a pull can also wait with a deadline
 * (`withDeadline`), which clears its waker (`park(undefined)`) when it ends.
 */
export const parking = <A, E>(
  attempt: () => Pull<A, E> | undefined,
  park: (wake: (() => void) | undefined) => void
): Pull<A, E> => {
  const waitFor = <E2>(deadline?: { readonly millis: number; readonly onTimeout: () => E2 }) =>
    Effect.async<Chunk.Chunk<A>, Option.Option<E | E2>>((resume) => {
      let done = false
      let timer: ReturnType<typeof setTimeout> | undefined
      const retry = () => {
        const next = attempt()
        if (next === undefined) return park(retry)
        done = true
        if (timer !== undefined) clearTimeout(timer)
        resume(next)
      }
      retry()
      if (!done && deadline !== undefined)
        timer = setTimeout(() => {
          done = true
          park(undefined)
          resume(Effect.fail(Option.some(deadline.onTimeout())))
        }, deadline.millis)
      return Effect.sync(() => {
        if (timer !== undefined) clearTimeout(timer)
        park(undefined)
      })
    })
  // Without a deadline, the waker only resumes the reader with the pull, which then looks itself: a waker left
  // behind by a wait that was interrupted takes nothing (Effect ignores a resume after the interruption, and what
  // came stays for the next look), so this wait needs no canceler. With one, `Effect.async` wraps every wait in
  // `onInterrupt` (~7 more runtime steps), and a reader waits once per message in an interactive session.
  const wait: Pull<A, E> = Effect.async((resume) => {
    const next = attempt()
    if (next !== undefined) return resume(next)
    park(() => resume(pull))
  })
  const pull: Pull<A, E> = Effect.suspend(() => attempt() ?? wait)
  deadlines.set(pull, (millis, onTimeout) => Effect.suspend(() => attempt() ?? waitFor({ millis, onTimeout })))
  return pull
}

/** The deadline-taking twin of each `parking` pull. */
const deadlines = new WeakMap<Pull<any, any>, <E2>(millis: number, onTimeout: () => E2) => Pull<any, any>>()

/**
 * `pull` (one made by `parking`) as a pull that fails with `onTimeout()` once it has waited `millis` for an answer:
 * a plain timer in the wait itself, where racing the pull would fork a fiber. `undefined` for any other pull.
 */
export const withDeadline = <A, E>(
  pull: Pull<A, E>
): (<E2>(millis: number, onTimeout: () => E2) => Pull<A, E | E2>) | undefined => deadlines.get(pull)
