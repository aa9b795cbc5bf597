/**
 * The local terminal during an attach: raw mode for the life of a scope (always restored: on detach, on errors,
 * on relay loss, on signals), keystrokes handed on as they are read with the escape sequences and detach keys taken
 * out (`EscapeKeys`; Ctrl-D is forwarded like any key), and window-size changes (SIGWINCH) as a stream of sizes.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as EscapeKeys from "./EscapeKeys.js"
import * as TerminalReplies from "./TerminalReplies.js"

export interface Keys {
  /** Completes with "detach" (`~.` or the detach keys) or "eof" (stdin closed); no keystroke is forwarded after. */
  readonly ended: Effect.Effect<"detach" | "eof">
}

export const size = (): { readonly cols: number; readonly rows: number } => ({
  cols: process.stdout.columns || 80,
  rows: process.stdout.rows || 24
})

/** Puts the terminal in raw mode until the scope closes. No-op when stdin is not a TTY. */
export const rawMode: Effect.Effect<void, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const tty = process.stdin.isTTY === true
    if (tty) process.stdin.setRawMode(true)
    // A signal or crash must not leave the user's terminal raw.
    const restore = () => {
      if (tty && process.stdin.isTTY) process.stdin.setRawMode(false)
    }
    process.once("exit", restore)
    return { tty, restore }
  }),
  ({ restore }) =>
    Effect.sync(() => {
      restore()
      process.removeListener("exit", restore)
    })
)

export interface KeyOptions {
  /** The `--detach-keys` chord (empty: only `~.`). */
  readonly detachKeys: Uint8Array
  /** True while the terminal's own replies must be dropped (while replayed output is on its way). */
  readonly dropReplies: () => boolean
  /**
   * Takes each piece of typed input (escapes and detach keys taken out), in the stdin read that brought it: no queue
   * and no fiber of its own between a keystroke and the attach's input (each stage cost every keystroke's echo).
   */
  readonly forward: (data: Uint8Array) => void
}

/** Reads stdin until a detach (`~.` or the detach keys) or its end. `~?` prints the escapes on stderr. */
export const keys = (options: KeyOptions): Effect.Effect<Keys, never, Scope.Scope> =>
  Effect.gen(function* () {
    const done = yield* Deferred.make<"detach" | "eof">()
    let over = false
    const end = (how: "detach" | "eof") => {
      over = true
      Deferred.unsafeDone(done, Exit.succeed(how))
    }
    const escapes = EscapeKeys.make(options.detachKeys)
    const onData = (chunk: Buffer) => {
      if (over) return
      const typed = options.dropReplies() ? TerminalReplies.strip(new Uint8Array(chunk)) : new Uint8Array(chunk)
      for (const action of escapes.feed(typed)) {
        if (action._tag === "Forward") options.forward(action.data)
        else if (action._tag === "Help") process.stderr.write(`\r\n${EscapeKeys.HELP}\r\n`)
        else return end("detach")
      }
    }
    const onEnd = () => {
      if (!over) end("eof")
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        process.stdin.on("data", onData)
        process.stdin.on("end", onEnd)
        process.stdin.resume()
      }),
      () =>
        Effect.sync(() => {
          process.stdin.off("data", onData)
          process.stdin.off("end", onEnd)
          process.stdin.pause()
        })
    )
    return { ended: Deferred.await(done) }
  })

/** Window sizes: one now, then one per SIGWINCH, until the scope closes. */
export const resizes: Effect.Effect<
  Stream.Stream<{ readonly cols: number; readonly rows: number }>,
  never,
  Scope.Scope
> = Effect.gen(function* () {
  const queue = yield* Queue.sliding<{ readonly cols: number; readonly rows: number }>(1)
  const onResize = () => void Queue.unsafeOffer(queue, size())
  yield* Effect.acquireRelease(
    Effect.sync(() => process.on("SIGWINCH", onResize)),
    () => Effect.sync(() => process.off("SIGWINCH", onResize))
  )
  return Stream.fromQueue(queue)
})
