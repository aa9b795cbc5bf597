/**
 * What follows the start message of an exec or attach call, as the relay core takes it: the same for a client's
 * call (`RelayGrpc`) and for a call another node forwards (`PeerServer`), whose messages differ only in the start.
 */
import type { AttachInput } from "@cmdop/domain/RelayClient"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { ExecInput } from "../RelayCore.js"

/** An exec call's messages after its start (the start itself, or an unreadable message, is dropped). */
type ExecTail =
  | { readonly _tag: "Stdin"; readonly data: Uint8Array }
  | { readonly _tag: "Eof" }
  | { readonly _tag: "Signal"; readonly signal: string }
  | { readonly _tag: "Start" | "Unreadable" }

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
  (stdin: boolean) =>
  (m: ExecTail): Option.Option<ExecInput> => {
    if (m._tag === "Signal") return Option.some({ _tag: "Signal", signal: m.signal })
    if (!stdin) return Option.none()
    if (m._tag === "Stdin") return Option.some({ _tag: "Stdin", data: m.data })
    if (m._tag === "Eof") return Option.some({ _tag: "Eof" })
    return Option.none()
  }

/**
 * `execInput` over what `firstAndPull` left after the start (the rest of its chunk, and the pull), as ONE stream
 * stage: the concatenation, filter and recovery of `execInput` are three more, each set up on every exec call.
 */
export const execInputOfPull = <E>(
  more: Chunk.Chunk<ExecTail>,
  pull: Effect.Effect<Chunk.Chunk<ExecTail>, Option.Option<E>>,
  stdin: boolean
): Stream.Stream<ExecInput> =>
  Stream.suspend(() => {
    const pick = toExecInput(stdin)
    let first: Chunk.Chunk<ExecTail> | undefined = more
    let ended = false
    const end = Effect.fail(Option.none())
    const next: Effect.Effect<Chunk.Chunk<ExecInput>, Option.Option<never>> = Effect.suspend(() => {
      if (ended) return end
      if (first !== undefined) {
        const chunk = first
        first = undefined
        return Effect.succeed(Chunk.filterMap(chunk, pick))
      }
      return Effect.matchEffect(pull, {
        onSuccess: (chunk) => Effect.succeed(Chunk.filterMap(chunk, pick)),
        onFailure: (failure) => {
          ended = true
          // A call that breaks off mid-stream ends stdin (as `execInput`'s recovery does).
          return Option.isSome(failure) && stdin ? Effect.succeed(Chunk.of<ExecInput>({ _tag: "Eof" })) : end
        }
      })
    })
    return Stream.repeatEffectChunkOption(next)
  })

/** An attach call's input and resizes after its start; the caller's half-close (or a failure) ends it. */
export const attachInput = <E>(rest: Stream.Stream<{ readonly _tag: string }, E>): Stream.Stream<AttachInput> =>
  rest.pipe(
    Stream.filter(isAttachInput),
    Stream.catchAll(() => Stream.empty)
  )

const isAttachInput = (m: { readonly _tag: string }): m is AttachInput => m._tag === "Data" || m._tag === "Resize"

/**
 * `attachInput` over what `firstAndPull` left after the start, as ONE stream stage (every keystroke passes it):
 * the concatenation, filter and recovery of `attachInput` are three more.
 */
export const attachInputOfPull = <E>(
  more: Chunk.Chunk<{ readonly _tag: string }>,
  pull: Effect.Effect<Chunk.Chunk<{ readonly _tag: string }>, Option.Option<E>>
): Stream.Stream<AttachInput> =>
  Stream.suspend(() => {
    let first: Chunk.Chunk<{ readonly _tag: string }> | undefined = more
    let ended = false
    const end = Effect.fail(Option.none())
    const next: Effect.Effect<Chunk.Chunk<AttachInput>, Option.Option<never>> = Effect.suspend(() => {
      if (ended) return end
      if (first !== undefined) {
        const chunk = first
        first = undefined
        return Effect.succeed(Chunk.filter(chunk, isAttachInput))
      }
      return Effect.matchEffect(pull, {
        onSuccess: (chunk) => Effect.succeed(Chunk.filter(chunk, isAttachInput)),
        onFailure: () => {
          ended = true
          return end
        }
      })
    })
    return Stream.repeatEffectChunkOption(next)
  })
