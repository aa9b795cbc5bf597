/**
 * What follows the start message of an exec or attach call, as the relay core takes it: the same for a client's
 * call (`RelayGrpc`) and for a call another node forwards (`PeerServer`), whose messages differ only in the start.
 */
import type { AttachInput } from "@cmdop/domain/RelayClient"
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
    Stream.filterMap((m): Option.Option<ExecInput> => {
      if (m._tag === "Signal") return Option.some({ _tag: "Signal", signal: m.signal })
      if (!stdin) return Option.none()
      if (m._tag === "Stdin") return Option.some({ _tag: "Stdin", data: m.data })
      if (m._tag === "Eof") return Option.some({ _tag: "Eof" })
      return Option.none()
    }),
    Stream.catchAll(() => (stdin ? Stream.succeed<ExecInput>({ _tag: "Eof" }) : Stream.empty))
  )

/** An attach call's input and resizes after its start; the caller's half-close (or a failure) ends it. */
export const attachInput = <E>(rest: Stream.Stream<{ readonly _tag: string }, E>): Stream.Stream<AttachInput> =>
  rest.pipe(
    Stream.filter((m): m is AttachInput => m._tag === "Data" || m._tag === "Resize"),
    Stream.catchAll(() => Stream.empty)
  )
