/**
 * An attached interactive session: raw mode, keystrokes in (escape sequences and detach keys taken out by
 * `TerminalSession.keys`), output out, resizes followed. When the relay, the network or the agent drops, it
 * reconnects with backoff (one status line per outage, not one per try) and resumes at the last byte it saw; it
 * gives up with a clear line when the session is gone or the outage outlasts the grace period. What it prints on
 * the way out is true: "keeps running" only when it was attached a moment ago.
 *
 * A reattach replays the session's recent output; a local terminal answers the queries in it (cursor position,
 * device attributes) as if typed. Those answers are dropped until the replay has been quiet for a moment.
 *
 * Ctrl-C before the first `Attached` (the terminal is not raw yet: joining a live session waits for the machine's
 * gate, which may hold it for an operator) gives up: the call ends, which withdraws a held join, and the CLI says so
 * and exits 130. Once attached, Ctrl-C is a keystroke for the remote shell; typed while the gate still holds a new
 * shell, it withdraws that request on the machine (the session ends with the agent's line).
 */
import * as PullStream from "@cmdop/grpc/PullStream"
import type { RelayClient } from "@cmdop/domain/RelayClient"
import { AttachInput } from "@cmdop/domain/RelayClient"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { CliError, ExitWith } from "./CliError.js"
import { Stdio } from "./Stdio.js"
import * as Terminal from "./TerminalSession.js"

/** How long a dropped attach keeps trying to get back before giving up. */
export const GRACE_MS = 60_000
/** The first and the longest wait between reconnect attempts. */
const BACKOFF_FIRST_MS = 250
const BACKOFF_MAX_MS = 5_000
/** Terminal replies are dropped until replayed output has been quiet this long. */
const REPLAY_QUIET_MS = 750

interface Outcome {
  /** `Interrupted`: Ctrl-C before the session was attached. */
  readonly _tag: "Detached" | "Ended" | "Lost" | "Interrupted"
  readonly exitCode?: number
  readonly reason?: string
  /** Ended because this client was cut off (link revoked or expired, access removed), not by the session's end. */
  readonly cut?: boolean
  /** Detached because the CLI was sent SIGTERM (a `kill`, a supervisor stopping it): exit 143, not 0. */
  readonly terminated?: boolean
  readonly error?: unknown
}

export interface Options {
  readonly sessionId?: string | undefined
  readonly detachKeys: Uint8Array
  /** How to detach, for the attached line. */
  readonly detachHint: string
}

/** True for a failure that a later try may not have: the relay, the network or the machine coming back. */
const retryable = (error: unknown): boolean => {
  if (typeof error !== "object" || error === null || !("_tag" in error)) return true
  const e = error as { readonly _tag: string; readonly reason?: string }
  if (e._tag === "RelayError") return ["Unavailable", "MachineLost", "Timeout", "Internal"].includes(e.reason ?? "")
  if (e._tag === "MachineError") return e.reason === "Offline"
  return false
}

/** True when the relay says it does not know the session (it names it in the not-found query). */
const sessionGone = (error: unknown, sessionId: string): boolean => {
  if (typeof error !== "object" || error === null || !("_tag" in error)) return false
  const e = error as { readonly _tag: string; readonly reason?: string; readonly query?: string }
  return e._tag === "MachineError" && e.reason === "NotFound" && (e.query ?? "").includes(sessionId)
}

const line = (text: string) => new TextEncoder().encode(`\r\ncmdop: ${text}\r\n`)

/** What one attach has learnt so far; it carries over reconnects. */
interface State {
  sessionId: string | undefined
  /** The next output byte expected (resume point). */
  offset: number | undefined
  /** The attached line has been printed (and the terminal is raw). */
  announced: boolean
  /** Completed with `announced`. */
  readonly attached: Deferred.Deferred<void>
  /** Before being attached, the relay said the machine's gate holds the session for approval. */
  held: boolean
  /** When the current outage began; undefined while attached. */
  lostAt: number | undefined
  attempt: number
  /** Replayed output is on its way: the terminal's answers to it are dropped. */
  replaying: boolean
  lastReplayAt: number
}

type StdioService = Stdio["Type"]

/** One attach, from dialing to the end of its event stream: Ended, or Lost when the stream stops without it. */
const attachOnce = (
  client: RelayClient["Type"],
  hostname: string,
  options: Options,
  state: State,
  inputs: Queue.Queue<AttachInput>,
  stdio: StdioService
) =>
  Effect.gen(function* () {
    const size = Terminal.size()
    const resuming = state.offset !== undefined
    const events = client.attach(
      {
        machine: hostname,
        cols: size.cols,
        rows: size.rows,
        term: process.env["TERM"] ?? "xterm-256color",
        ...(state.sessionId === undefined ? {} : { sessionId: state.sessionId }),
        ...(state.offset === undefined ? {} : { resumeFrom: state.offset })
      },
      PullStream.fromQueue(inputs)
    )
    let end: Outcome | undefined
    yield* PullStream.runForEach(events, (event) => {
      switch (event._tag) {
        case "Attached":
          return Effect.gen(function* () {
            state.sessionId = event.sessionId
            state.offset = event.offset
            state.replaying = !event.created && !resuming
            state.lastReplayAt = yield* Clock.currentTimeMillis
            if (!state.announced) {
              state.announced = true
              yield* Deferred.succeed(state.attached, undefined)
              yield* stdio.stderr(
                new TextEncoder().encode(
                  `cmdop: attached to ${event.machine.hostname}, session ${event.sessionId}${event.created ? " (new)" : ""} — ${options.detachHint}\n`
                )
              )
              yield* Terminal.rawMode
            } else if (state.lostAt !== undefined) yield* stdio.stderr(line("reconnected"))
            state.lostAt = undefined
            state.attempt = 0
          })
        case "Output":
          state.offset = event.offset + event.data.byteLength
          return Effect.zipRight(
            state.replaying
              ? Effect.map(Clock.currentTimeMillis, (now) => void (state.lastReplayAt = now))
              : Effect.void,
            stdio.stdout(event.data)
          )
        case "Ended":
          end = { _tag: "Ended", exitCode: event.exitCode, reason: event.reason, cut: event.cut === true }
          return Effect.void
        // Before Attached (joining a live session) the terminal is not raw yet: a plain line.
        case "Notice":
          if (!state.announced && event.text.startsWith("waiting for approval")) state.held = true
          return stdio.stderr(state.announced ? line(event.text) : new TextEncoder().encode(`cmdop: ${event.text}\n`))
      }
    })
    return end ?? ({ _tag: "Lost" } as Outcome)
  })

/** A dropped attach: fail when it cannot come back, else wait (backoff) before the next try. */
const lost = (state: State, hostname: string, error: unknown, stdio: StdioService): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    if (state.announced && state.sessionId !== undefined && sessionGone(error, state.sessionId))
      return yield* new CliError({
        message: `session ${state.sessionId} no longer exists on ${hostname} (its agent restarted, or it ended); nothing of it keeps running — open a new one with: cmdop connect ${hostname}`
      })
    if (!state.announced || state.sessionId === undefined || !retryable(error))
      return yield* Effect.fail(error ?? new CliError({ message: "the relay closed the session" }))
    const now = yield* Clock.currentTimeMillis
    if (state.lostAt === undefined) {
      state.lostAt = now
      yield* stdio.stderr(line("connection lost; reconnecting… (~. detaches)"))
    }
    if (now - state.lostAt > GRACE_MS)
      return yield* new CliError({
        message: `could not reach session ${state.sessionId} on ${hostname} for ${GRACE_MS / 1000}s; it may still be running: cmdop connect ${hostname} --session ${state.sessionId}`
      })
    const wait = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** state.attempt)
    state.attempt += 1
    yield* Effect.sleep(wait)
  })

/** The last line and the exit code for a detach or an end; true to what is known of the session. */
const farewell = (
  outcome: Outcome,
  state: State,
  hostname: string
): { readonly text: string; readonly code: number } => {
  const id = state.sessionId
  const reattach = `cmdop connect ${hostname} --session ${id}`
  if (outcome._tag === "Interrupted")
    return {
      code: 130,
      text: state.held
        ? `withdrew the request waiting for approval on ${hostname} (Ctrl-C)`
        : "interrupted before a session started"
    }
  if (outcome._tag === "Detached")
    return {
      // Killed by SIGTERM, the CLI says so in its status (as the process it stands for would), not 0.
      code: outcome.terminated === true ? 143 : 0,
      text:
        (outcome.terminated === true ? "terminated; " : "") +
        (id === undefined
          ? "detached before a session started; nothing keeps running"
          : state.lostAt === undefined
            ? `detached; session ${id} keeps running — reattach with: ${reattach}`
            : `detached while the connection was down; session ${id} may still be running — try: ${reattach}`)
    }
  if (/unknown session/i.test(outcome.reason ?? ""))
    return {
      code: 255,
      text: `session ${id} no longer exists on ${hostname} (its agent restarted); nothing of it keeps running`
    }
  // Cut off, the client never learns how the session ends (it may go on): ssh's status for a connection the other
  // side ended, so a script tells a revoked link from a shell that exited 0.
  if (outcome.cut === true) return { code: 255, text: `cut off from session ${id} on ${hostname}: ${outcome.reason}` }
  // Ctrl-C while the machine's gate held the new shell: the agent's line says it all (no session ever ran).
  if (outcome.reason?.startsWith("withdrew the request ") === true)
    return { code: outcome.exitCode ?? 130, text: outcome.reason }
  return { code: outcome.exitCode ?? 0, text: `session ended (${outcome.reason}, exit ${outcome.exitCode})` }
}

export const run = (client: RelayClient["Type"], hostname: string, options: Options) =>
  Effect.scoped(
    Effect.gen(function* () {
      const stdio = yield* Stdio
      const inputs = yield* Queue.unbounded<AttachInput>()
      const state: State = {
        sessionId: options.sessionId,
        offset: undefined,
        announced: false,
        attached: yield* Deferred.make<void>(),
        held: false,
        lostAt: undefined,
        attempt: 0,
        replaying: false,
        lastReplayAt: 0
      }
      const keys = yield* Terminal.keys({
        detachKeys: options.detachKeys,
        dropReplies: () => state.replaying,
        forward: (data) => Queue.unsafeOffer(inputs, AttachInput.Data({ data }))
      })
      // SIGTERM detaches (the session keeps running) with the reattach line, instead of the runtime's silent exit 0.
      const terminated = yield* stdio.terminated
      // Ctrl-C is the CLI's until the session is attached (then the terminal is raw, and it is a keystroke).
      const interrupted: Effect.Effect<Outcome> = Effect.suspend(() =>
        state.announced
          ? Effect.never
          : Effect.scoped(
              Effect.flatMap(stdio.interrupts, (presses) =>
                Effect.raceFirst(
                  Effect.as(Stream.runHead(presses), true),
                  Effect.as(Deferred.await(state.attached), false)
                )
              )
            ).pipe(Effect.flatMap((pressed) => (pressed ? Effect.succeed({ _tag: "Interrupted" }) : Effect.never)))
      )
      yield* Effect.flatMap(Terminal.resizes, (sizes) =>
        Stream.runForEach(sizes, (s) => Queue.offer(inputs, AttachInput.Resize(s)))
      ).pipe(Effect.forkScoped)
      // The replay is over once it has been quiet for a moment; the terminal's answers are the shell's again.
      yield* Clock.currentTimeMillis.pipe(
        Effect.map((now) => {
          if (state.replaying && now - state.lastReplayAt > REPLAY_QUIET_MS) state.replaying = false
        }),
        Effect.repeat(Schedule.spaced("100 millis")),
        Effect.forkScoped
      )
      for (;;) {
        // A detach wins over everything, the wait between reconnects included.
        const outcome: Outcome = yield* Effect.raceFirst(
          Effect.either(attachOnce(client, hostname, options, state, inputs, stdio)).pipe(
            Effect.map((r): Outcome => (Either.isRight(r) ? r.right : { _tag: "Lost", error: r.left })),
            Effect.tap((o) => (o._tag === "Lost" ? lost(state, hostname, o.error, stdio) : Effect.void))
          ),
          Effect.raceAll([
            Effect.as(keys.ended, { _tag: "Detached" } as Outcome),
            Effect.as(terminated, { _tag: "Detached", terminated: true } as Outcome),
            interrupted
          ])
        )
        if (outcome._tag !== "Lost") {
          const { code, text } = farewell(outcome, state, hostname)
          yield* stdio.stderr(line(text))
          return code
        }
      }
    })
  ).pipe(Effect.flatMap((code) => (code === 0 ? Effect.void : Effect.fail(new ExitWith({ code })))))
