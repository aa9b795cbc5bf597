/**
 * What follows the start message of an exec or attach call, as the relay core takes it: the same for a client's
 * call (`RelayGrpc`) and for a call another node forwards (`PeerServer`), whose messages differ only in the start.
 */
import type { AttachInput } from "@cmdop/domain/RelayClient"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { ExecInput } from "../RelayCore.js"

/**
 * An exec call's messages after its start (the start itself, or an unreadable message, is dropped; a forwarded
 * call's `Cancel` goes to `onCancel`).
 */
type ExecTail =
  | { readonly _tag: "Stdin"; readonly data: Uint8Array }
  | { readonly _tag: "Eof" }
  | { readonly _tag: "Signal"; readonly signal: string }
  | { readonly _tag: "Start" | "Unreadable" | "Cancel" }

/**
 * Signals are forwarded whether or not the caller sends stdin; stdin and its end only when it does. A call that
 * breaks off mid-stream ends stdin (an `Eof`) rather than failing the command.
 */
export const execInput = <E>(rest: Stream.Stream<ExecTail, E>, stdin: boolean): Stream.Stream<ExecInput> =>
  rest.pipe(
    Stream.filterMap(toExecInput(stdin)),
    Stream.catchAll(() => (stdin ? Stream.succeed<ExecInput>({ _tag: "Eof" }) : Stream.empty))
  )

const toExecInput =
  (stdin: boolean, onCancel?: () => void) =>
  (m: ExecTail): Option.Option<ExecInput> => {
    if (m._tag === "Signal") return Option.some({ _tag: "Signal", signal: m.signal })
    if (stdin) {
      if (m._tag === "Stdin") return Option.some({ _tag: "Stdin", data: m.data })
      if (m._tag === "Eof") return Option.some({ _tag: "Eof" })
    }
    if (m._tag === "Cancel") onCancel?.()
    return Option.none()
  }

/**
 * What `firstAndPull` left after a call's start (the rest of its chunk, and the pull), as ONE stream stage: each
 * chunk through `pick`; when the pull ends, or fails (`failed`), `last` may add a final chunk. A concatenation,
 * a filter and a recovery would be three more stages, each set up on every call and passed by every message.
 */
const restOfPull = <T, A, E>(
  more: Chunk.Chunk<T>,
  pull: Effect.Effect<Chunk.Chunk<T>, Option.Option<E>>,
  pick: (chunk: Chunk.Chunk<T>) => Chunk.Chunk<A>,
  last: (failed: boolean) => Chunk.Chunk<A> | undefined
): Stream.Stream<A> =>
  PullStream.fromPull(() => {
    let first: Chunk.Chunk<T> | undefined = more
    let ended = false
    const end = PullStream.end
    const next: Effect.Effect<Chunk.Chunk<A>, Option.Option<never>> = Effect.suspend(() => {
      if (ended) return end
      if (first !== undefined) {
        const chunk = first
        first = undefined
        return Effect.succeed(pick(chunk))
      }
      return Effect.matchEffect(pull, {
        onSuccess: (chunk) => Effect.succeed(pick(chunk)),
        onFailure: (failure) => {
          ended = true
          const final = last(Option.isSome(failure))
          return final === undefined ? end : Effect.succeed(final)
        }
      })
    })
    return next
  })

/**
 * `execInput` over what `firstAndPull` left after the start, as ONE stream stage (`restOfPull`). A `Cancel` (a
 * forwarded call's in-band cancel, `PeerService.Cancel`) calls `onCancel` when the message is read: a check in
 * the pick every message already passes, after the hot kinds, not a stage of its own.
 */
export const execInputOfPull = <E>(
  more: Chunk.Chunk<ExecTail>,
  pull: Effect.Effect<Chunk.Chunk<ExecTail>, Option.Option<E>>,
  stdin: boolean,
  onCancel?: () => void
): Stream.Stream<ExecInput> => {
  const pick = toExecInput(stdin, onCancel)
  return restOfPull(
    more,
    pull,
    (chunk) => Chunk.filterMap(chunk, pick),
    // A call that breaks off mid-stream ends stdin (as `execInput`'s recovery does).
    (failed) => (failed && stdin ? Chunk.of<ExecInput>({ _tag: "Eof" }) : undefined)
  )
}

/** An attach call's input and resizes after its start; the caller's half-close (or a failure) ends it. */
export const attachInput = <E>(rest: Stream.Stream<{ readonly _tag: string }, E>): Stream.Stream<AttachInput> =>
  rest.pipe(
    Stream.filter(isAttachInput),
    Stream.catchAll(() => Stream.empty)
  )

const isAttachInput = (m: { readonly _tag: string }): m is AttachInput => m._tag === "Data" || m._tag === "Resize"

/**
 * `attachInput` over what `firstAndPull` left after the start, as ONE stream stage: every keystroke passes it. A
 * `Cancel` calls `onCancel` when it is read (as `execInputOfPull`); it is looked for only in a chunk that held
 * something other than input.
 */
export const attachInputOfPull = <E>(
  more: Chunk.Chunk<{ readonly _tag: string }>,
  pull: Effect.Effect<Chunk.Chunk<{ readonly _tag: string }>, Option.Option<E>>,
  onCancel?: () => void
): Stream.Stream<AttachInput> =>
  restOfPull(
    more,
    pull,
    (chunk) => {
      const input = Chunk.filter(chunk, isAttachInput)
      if (onCancel !== undefined && input.length < chunk.length && Chunk.some(chunk, isCancel)) onCancel()
      return input
    },
    () => undefined
  )

const isCancel = (m: { readonly _tag: string }) => m._tag === "Cancel"
