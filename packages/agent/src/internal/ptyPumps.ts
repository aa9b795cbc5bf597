/**
 * The PTY sessions as one link serves them. The sessions live in `PtySessions` and outlive the link; the link runs
 * one output pump per session, which sends the session's output from an offset as `SessionOutput` (PIPE_STDOUT,
 * `offset` = offset of `data[0]`, contiguous, within `MAX_CHUNK` and the pump's credit), then exactly one
 * `SessionExit` when the session ends. A replay restarts the pump from the offset asked for, with a full window.
 */
import type { Caller, PtySpec, SessionReplay } from "@cmdop/domain/AgentLink"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as AuditLog from "../AuditLog.js"
import type { PtySessions } from "../PtySessions.js"
import { PtySessionError } from "../PtySessions.js"
import * as Credit from "./credit.js"
import type { EngineContext } from "./engineContext.js"
import { sendWithin } from "./outputChunks.js"

/** The `SessionExit.error` for a replay of a session the agent does not know. */
export const UNKNOWN_SESSION = "unknown session"

/** The error of a PTY session on an engine without `PtySessions`. */
export const PTY_UNSUPPORTED = "interactive sessions are not supported by this agent yet"

export interface PtyPumps {
  readonly has: (id: string) => boolean
  /** Starts session `id` and its pump from offset 0; a failure to start is answered with a lone `SessionExit`. */
  readonly open: (id: string, spec: PtySpec, caller: Caller | undefined) => Effect.Effect<void>
  readonly replay: (request: SessionReplay) => Effect.Effect<void>
  /**
   * Writes input and acknowledges it with PIPE_STDIN `SessionAck`s, in batches (`inputAckBatch`); unknown or ended
   * sessions are ignored.
   */
  readonly input: (id: string, data: Uint8Array, caller: Caller | undefined) => Effect.Effect<void>
  readonly ack: (id: string, bytes: number) => Effect.Effect<void>
  readonly signal: (id: string, name: string) => Effect.Effect<void>
  readonly resize: (id: string, cols: number, rows: number) => Effect.Effect<void>
  readonly close: (id: string) => Effect.Effect<void>
}

interface Pump {
  readonly credit: Credit.Credit
  /** Set right after the fork (the entry is registered first, so the pump's own cleanup always finds it). */
  fiber: Fiber.RuntimeFiber<void> | undefined
}

/**
 * PTY input is acknowledged in batches of this many bytes, so a keystroke costs no ack message of its own. The relay
 * sends input in pieces of at most 64 KiB under its credit of `window`: a batch of at most `window` − 64 KiB leaves
 * it room for a whole piece, so it never waits for an ack still being held. Smaller windows: every input is acked.
 */
export const inputAckBatch = (window: number): number => Math.max(0, Math.min(64 * 1024, window - 64 * 1024))

export const make = <E>(ctx: EngineContext<E>, ptys: PtySessions["Type"] | undefined): PtyPumps => {
  const pumps = new Map<string, Pump>()
  /** PTY sessions whose SessionExit this link sent. */
  const reported = new Set<string>()
  /** Input bytes written but not acknowledged yet, per session. */
  const unacked = new Map<string, number>()
  const ackBatch = inputAckBatch(ctx.options.window)

  /** (Re)starts this link's pump of session `id` from `from`. */
  const pump = (id: string, from: number): Effect.Effect<void> =>
    Effect.gen(function* () {
      const previous = pumps.get(id)
      if (previous !== undefined) {
        pumps.delete(id)
        if (previous.fiber !== undefined) yield* Fiber.interrupt(previous.fiber)
      }
      const entry: Pump = { credit: yield* Credit.make(ctx.options.window), fiber: undefined }
      pumps.set(id, entry)
      const run = pumpOutput(ctx, ptys, reported, unacked, id, from, entry.credit).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            if (pumps.get(id) === entry) pumps.delete(id)
          })
        )
      )
      entry.fiber = yield* Effect.forkIn(ctx.guard(run), ctx.pumpsScope)
    })

  const open = (id: string, spec: PtySpec, caller: Caller | undefined) =>
    Effect.gen(function* () {
      if (ptys === undefined) return yield* ctx.reject(id, PTY_UNSUPPORTED)
      const who = AuditLog.callerFields(caller)
      const opened = yield* Effect.either(ptys.open(id, spec, who.caller))
      if (opened._tag === "Left") {
        const exitCode = opened.left.reason === "CommandNotFound" ? 127 : 126
        yield* ctx.audit.open(id, "pty", who, () => AuditLog.digest(spec.command.join(" ")))
        yield* ctx.audit.end(id, "pty", who, { exit_code: exitCode, reason: opened.left.detail })
        return yield* ctx.reject(id, opened.left.detail, exitCode)
      }
      yield* ctx.audit.open(id, "pty", who, () => AuditLog.digest(opened.right.command))
      yield* ctx.audit.watchPty(ptys, id, who)
      reported.delete(id)
      yield* pump(id, 0)
    })

  /** Runs a PTY operation; errors (unknown or ended session) are dropped, like messages for unknown ids. */
  const onPty = <A>(f: (ptys: PtySessions["Type"]) => Effect.Effect<A, PtySessionError>) =>
    ptys === undefined ? Effect.void : Effect.ignore(f(ptys))

  return {
    has: (id) => pumps.has(id),
    open,
    replay: (request) =>
      Effect.suspend(() =>
        ptys === undefined || request.sessionId === "" || reported.has(request.sessionId)
          ? Effect.void
          : pump(request.sessionId, request.fromOffset)
      ),
    input: (id, data, caller) =>
      data.length === 0
        ? Effect.void
        : onPty((ptys) =>
            Effect.zipRight(
              Effect.zipRight(
                ptys.write(id, data, caller?.principal ?? ""),
                ctx.audit.input(id, "pty", caller, data.length)
              ),
              Effect.suspend(() => {
                const bytes = (unacked.get(id) ?? 0) + data.length
                if (bytes < ackBatch) {
                  unacked.set(id, bytes)
                  return Effect.void
                }
                unacked.delete(id)
                return ctx.supervise(
                  ctx.send({ _tag: "SessionAck", sessionId: id, pipe: "stdin", bytes }),
                  ctx.sessionsScope
                )
              })
            )
          ),
    ack: (id, bytes) => Effect.suspend(() => pumps.get(id)?.credit.give(bytes) ?? Effect.void),
    signal: (id, name) => onPty((ptys) => ptys.signal(id, name)),
    resize: (id, cols, rows) => onPty((ptys) => ptys.resize(id, cols, rows)),
    // The kill goes on in PtySessions' scope; the pump reports the exit.
    close: (id) =>
      Effect.zipRight(
        Effect.sync(() => unacked.delete(id)),
        onPty((ptys) => Effect.forkIn(Effect.ignore(ptys.close(id)), ctx.sessionsScope))
      )
  }
}

/** Sends session `id`'s output from `from`, then its exit (remembered in `reported`; its input tally dropped). */
const pumpOutput = <E>(
  ctx: EngineContext<E>,
  ptys: PtySessions["Type"] | undefined,
  reported: Set<string>,
  unacked: Map<string, number>,
  id: string,
  from: number,
  credit: Credit.Credit
) =>
  Effect.gen(function* () {
    if (ptys === undefined) return
    // A plain loop over the session's output (not `ptys.output` as a stream): each stream stage would cost every
    // keystroke's echo on its way out.
    const loop = (cursor: number): Effect.Effect<void, E | PtySessionError> =>
      Effect.flatMap(ptys.read(id, cursor), (next) => {
        if (Option.isNone(next)) return Effect.void
        const [piece, after] = next.value
        return Effect.zipRight(
          sendWithin(piece.data, credit, (data, at) =>
            ctx.send({ _tag: "SessionOutput", sessionId: id, pipe: "stdout", data, offset: piece.offset + at })
          ),
          loop(after)
        )
      })
    yield* loop(from)
    const info = yield* ptys.exited(id)
    reported.add(id)
    unacked.delete(id)
    yield* ctx.sendExit(id, {
      exitCode: info.exitCode,
      ...(info.signal !== undefined ? { signal: info.signal } : {}),
      timedOut: false,
      error: info.reason === "exit" ? "" : info.reason,
      durationMs: info.durationMs
    })
  }).pipe(
    Effect.catchAll((error) =>
      !(error instanceof PtySessionError)
        ? Effect.fail(error)
        : error.reason === "NotFound"
          ? ctx.sendExit(id, { exitCode: 126, timedOut: false, error: UNKNOWN_SESSION })
          : Effect.void
    )
  )
