/**
 * The agent's session engine, independent of the transport: it serves the sessions the relay multiplexes over one
 * link (in production the `AgentService.Connect` stream, after the Hello/Welcome handshake; in tests a queue).
 *
 * Per session (`SessionOpen` with `exec`): the command runs through `ProcessRunner` in its own scope; its stdout and
 * stderr go out as `SessionOutput` chunks of at most 64 KiB, never more than `window` bytes unacknowledged (stdout
 * and stderr share one credit, replenished by the relay's `SessionAck` for PIPE_STDOUT / PIPE_STDERR). A session
 * without credit stops reading its pipes, so its command blocks; other sessions and heartbeats carry on. Stdin
 * (`SessionInput`) is written in order and each written chunk is acknowledged with a PIPE_STDIN `SessionAck`.
 *
 * Interactive sessions (`SessionOpen` with `pty`) live in `PtySessions` (given in `Options.ptySessions`; without
 * it they are refused with 126 and `PTY_UNSUPPORTED`), not in the engine: they outlive the link. The engine runs one
 * output pump per PTY session on this link, which sends the session's output from an offset, as it comes:
 * - `open` (pty) starts the session (refused with a lone `SessionExit`: 127 and `command not found: …` when the
 *   shell/command does not exist, 126 and the error otherwise, including a duplicate id) and its pump from offset 0;
 * - `replay` {session_id, from_offset} stops this link's pump of that session (if any) and starts a new one from
 *   `from_offset`, clamped to `[oldest byte still in the agent's ring, total output]`. The replayed bytes and then
 *   live output follow as `SessionOutput` with `pipe = PIPE_STDOUT`, `offset` = offset of `data[0]`, offsets
 *   contiguous (each message's offset is the previous one's offset + length), `data` ≤ 64 KiB. A replay resets the
 *   session's credit to the full window (count everything sent before it as acknowledged). A replay of an unknown
 *   session gets a lone `SessionExit` (126, error `unknown session`); of a session whose exit this link already
 *   reported, nothing.
 * - output credit as for exec, acknowledged with `SessionAck` PIPE_STDOUT; `input` is written to the PTY and
 *   acknowledged with a PIPE_STDIN `SessionAck` of its length (`eof` is ignored: a terminal has no end of input;
 *   send 0x04 for that); `resize` resizes the terminal; `signal` goes to its foreground process group; `close` kills
 *   its process tree. Messages for ids the agent does not know are ignored (no ack).
 * - when the session ends (shell exit, `close`, idle timeout), the pump sends its remaining output, then exactly one
 *   `SessionExit`: `exit_code` (signal n: 128 + n and `signal` set), `error` = `""` when the shell exited by itself,
 *   `"closed"` after `close` (or daemon shutdown), `"idle"` after the idle timeout; `duration_ms` since the open.
 *
 * How things end:
 * - an exec session ends with exactly one `SessionExit`, after its last `SessionOutput`, once the output reached
 *   end-of-file and the command exited. `SessionClose` kills the process tree and drops output not yet sent (the
 *   reader is gone); the `SessionExit` still follows. `SessionSignal` only delivers the signal.
 * - a session that never ran (duplicate id; no spec; PTY without `PtySessions`) gets a lone `SessionExit` with
 *   `error`.
 * - `serve` returns when `incoming` ends, fails with the link's error when `incoming` or `send` fails, and fails with
 *   `RelaySilentError` when nothing arrives for `relaySilenceTimeout`. In every case all exec sessions are killed
 *   and this link's PTY pumps stopped before it completes; no `SessionExit` is sent for them (the link is gone).
 *   PTY sessions keep running; the next link reports them in Hello and the relay asks for their output with replay.
 *   A PTY session that ends while no link is up is never reported (it is simply absent from the next Hello).
 *
 * The machine's audit log (given in `Options.auditLog`; without it nothing is recorded): every exec and PTY open
 * (`session_open`, with `SessionOpen.caller` and the command's digest) and every end (`session_end` with the exit
 * code; a PTY session's end is recorded when it happens, whether or not a link is up then; an exec session cut off by
 * the link's end as `"link closed"`). PTY input is attributed to `SessionInput.caller`: a keystroke only adds its
 * byte count to a tally per session and caller, which a background fiber writes as one `input` line per
 * `INPUT_COALESCE` burst (and before the session's end, and when `serve` ends). A failed audit write is logged as a
 * warning; the session goes on.
 */
import type {
  AgentMessage,
  ExecSpec as WireExecSpec,
  RelayMessage,
  SessionOpen,
  SessionReplay
} from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import { Pipe } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ExecSpec, ExitInfo, OutputChunk, RunningProcess } from "./ProcessRunner.js"
import { ProcessRunner } from "./ProcessRunner.js"
import type { PtyOutput, PtySessions } from "./PtySessions.js"
import { PtySessionError } from "./PtySessions.js"
import * as AuditLog from "./AuditLog.js"
import * as SessionAudit from "./internal/sessionAudit.js"

/** Largest `SessionOutput.data` the engine sends. */
export const MAX_CHUNK = 256 * 1024

/** One agent stream as the engine sees it. */
export interface Link<E = never> {
  /** The relay's messages, after the handshake. Its end ends `serve`; its failure fails it. */
  readonly incoming: Stream.Stream<RelayMessage, E>
  /** Sends one message; called from many fibers. A failure ends `serve` with that error. */
  readonly send: (message: AgentMessage) => Effect.Effect<void, E>
}

export interface Options {
  /** Bytes of one session's output that may be unacknowledged (stdout and stderr together). */
  readonly window: number
  /** Time between the agent's heartbeats; zero or less disables them. */
  readonly heartbeatInterval: Duration.DurationInput
  /** `serve` fails with `RelaySilentError` when the relay sends nothing for this long; infinite disables it. */
  readonly relaySilenceTimeout: Duration.DurationInput
  /** The machine's interactive sessions (they outlive the link); without it PTY sessions are refused. */
  readonly ptySessions?: PtySessions["Type"]
  /** The machine's audit log (see the module header); without it nothing is recorded. */
  readonly auditLog?: AuditLog.AuditLog["Type"]
}

/** PTY input of one caller into one session within this long becomes one `input` line of the audit log. */
export const INPUT_COALESCE = Duration.seconds(1)

/** The relay sent nothing (not even a heartbeat) for too long; the daemon treats the stream as dead. */
export class RelaySilentError extends Data.TaggedError("RelaySilentError")<{ readonly timeout: Duration.Duration }> {
  override get message(): string {
    return `the relay sent nothing for ${Duration.format(this.timeout)}`
  }
}

/** The error of a PTY session on an engine without `PtySessions`. */
export const PTY_UNSUPPORTED = "interactive sessions are not supported by this agent yet"

/**
 * Serves sessions over `link` until it ends (see the module header). Requires a `ProcessRunner`.
 */
export const serve = <E>(link: Link<E>, options: Options): Effect.Effect<void, E | RelaySilentError, ProcessRunner> =>
  Effect.scoped(
    Effect.gen(function* () {
      const runner = yield* ProcessRunner
      const scope = yield* Effect.scope
      // Closed before anything else the engine set up: kills every session in parallel.
      const sessionsScope = yield* Scope.fork(scope, ExecutionStrategy.parallel)
      const linkFailed = yield* Deferred.make<never, E>()
      const sessions = new Map<string, Session>()
      const pty = options.ptySessions
      // This link's output pumps of PTY sessions: closing it when `serve` ends stops them; the sessions keep running.
      const pumpsScope = yield* Scope.fork(scope, ExecutionStrategy.parallel)
      const pumps = new Map<string, Pump>()
      /** PTY sessions whose SessionExit this link sent. */
      const reported = new Set<string>()
      const audit = SessionAudit.make(options.auditLog)
      if (options.auditLog !== undefined) {
        yield* Effect.forkIn(
          Effect.forever(Effect.zipRight(Effect.sleep(INPUT_COALESCE), Effect.uninterruptible(audit.flushInput()))),
          scope
        )
        yield* Effect.addFinalizer(() => audit.flushInput())
      }

      /** Forks a background part of the engine; its failure (a failed send) ends `serve`. */
      const supervise = <A>(effect: Effect.Effect<A, E>, into: Scope.Scope) =>
        effect.pipe(
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause) ? Effect.void : Deferred.failCause(linkFailed, cause)
          ),
          Effect.forkIn(into),
          Effect.asVoid
        )

      const sendExit = (sessionId: string, info: Omit<ExitInfo, "durationMs"> & { readonly durationMs?: number }) =>
        link.send({
          kind: {
            $case: "exit",
            value: {
              sessionId,
              exitCode: info.exitCode,
              signal: info.signal ?? "",
              timedOut: info.timedOut,
              error: info.error ?? "",
              durationMs: info.durationMs ?? 0
            }
          }
        })

      const reject = (sessionId: string, error: string, exitCode = 126) =>
        supervise(sendExit(sessionId, { exitCode, timedOut: false, error }), sessionsScope)

      /** (Re)starts this link's pump of PTY session `id` from `from` (see the module header). */
      const pump = (ptys: PtySessions["Type"], id: string, from: number): Effect.Effect<void> =>
        Effect.gen(function* () {
          const previous = pumps.get(id)
          if (previous !== undefined) {
            pumps.delete(id)
            if (previous.fiber !== undefined) yield* Fiber.interrupt(previous.fiber)
          }
          const credit = makeCredit(options.window)
          const entry: Pump = { credit, fiber: undefined }
          pumps.set(id, entry)
          const run = Effect.gen(function* () {
            yield* Stream.runForEach(ptys.output(id, from), (piece) => sendPtyOutput(id, piece, credit, link.send))
            const info = yield* ptys.exited(id)
            reported.add(id)
            yield* sendExit(id, {
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
                  ? sendExit(id, { exitCode: 126, timedOut: false, error: UNKNOWN_SESSION })
                  : Effect.void
            ),
            Effect.ensuring(
              Effect.sync(() => {
                if (pumps.get(id) === entry) pumps.delete(id)
              })
            )
          )
          entry.fiber = yield* Effect.forkIn(
            run.pipe(
              Effect.catchAllCause((cause) =>
                Cause.isInterruptedOnly(cause) ? Effect.void : Deferred.failCause(linkFailed, cause)
              )
            ),
            pumpsScope
          )
        })

      const openPty = (id: string, request: SessionOpen & { kind: { $case: "pty" } }) =>
        Effect.gen(function* () {
          if (pty === undefined) return yield* reject(id, PTY_UNSUPPORTED)
          const who = AuditLog.callerFields(request.caller)
          const opened = yield* Effect.either(pty.open(id, request.kind.value, who.caller))
          if (opened._tag === "Left") {
            const exitCode = opened.left.reason === "CommandNotFound" ? 127 : 126
            yield* audit.open(id, "pty", who, () => AuditLog.digest(request.kind.value.command.join(" ")))
            yield* audit.end(id, "pty", who, { exit_code: exitCode, reason: opened.left.detail })
            return yield* reject(id, opened.left.detail, exitCode)
          }
          yield* audit.open(id, "pty", who, () => AuditLog.digest(opened.right.command))
          yield* audit.watchPty(pty, id, who)
          reported.delete(id)
          yield* pump(pty, id, 0)
        })

      const replay = (request: SessionReplay) =>
        Effect.suspend(() => {
          if (pty === undefined || request.sessionId === "" || reported.has(request.sessionId)) return Effect.void
          return pump(pty, request.sessionId, request.fromOffset)
        })

      /** Runs a PTY operation; errors (unknown or ended session) are dropped, like messages for unknown ids. */
      const onPty = <A>(f: (ptys: PtySessions["Type"]) => Effect.Effect<A, PtySessionError>) =>
        pty === undefined ? Effect.void : Effect.ignore(f(pty))

      const open = (request: SessionOpen) =>
        Effect.gen(function* () {
          const id = request.sessionId
          if (id === "") return
          if (sessions.has(id) || pumps.has(id)) return yield* reject(id, `session ${id} is already open`)
          const kind = request.kind
          if (kind === undefined) return yield* reject(id, "the session asks for neither exec nor pty")
          if (kind.$case === "pty") return yield* openPty(id, { ...request, kind })
          const who = AuditLog.callerFields(request.caller)
          yield* audit.open(id, "exec", who, () => AuditLog.digestArgv(kind.value.argv))
          const sessionScope = yield* Scope.fork(sessionsScope, ExecutionStrategy.sequential)
          const proc = yield* Scope.extend(runner.spawn(toSpec(kind.value)), sessionScope)
          const session: Session = {
            id,
            process: proc,
            credit: makeCredit(options.window),
            stdin: yield* Queue.unbounded<StdinItem>(),
            closing: false
          }
          sessions.set(id, session)
          let audited = options.auditLog === undefined
          const auditEnd = (info: ExitInfo | undefined, cutOff: boolean) =>
            Effect.suspend(() => {
              if (audited) return Effect.void
              audited = true
              // The stdin tallied so far goes in before the end line.
              return Effect.zipRight(
                audit.flushInput(id),
                audit.end(id, "exec", who, {
                  ...(info === undefined ? {} : { exit_code: info.exitCode, duration_ms: info.durationMs }),
                  reason: cutOff
                    ? "link closed"
                    : info?.timedOut
                      ? "timeout"
                      : (info?.error ?? (session.closing ? "closed" : "exit"))
                })
              )
            })
          yield* supervise(writeStdin(session, link.send), sessionScope)
          yield* supervise(
            Effect.gen(function* () {
              // Pipe reads come 64 KiB at a time; whatever has piled up is sent as fewer, larger messages.
              yield* Stream.runForEachChunk(proc.output, (chunks) =>
                Effect.forEach(coalesce(chunks), (chunk) => sendOutput(session, chunk, link.send), { discard: true })
              )
              const info = yield* proc.exit
              sessions.delete(id)
              yield* auditEnd(info, false)
              yield* sendExit(id, info)
            }).pipe(
              Effect.ensuring(
                Effect.suspend(() => {
                  if (sessions.get(id) === session) sessions.delete(id)
                  return Effect.zipRight(
                    Scope.close(sessionScope, Exit.void),
                    // Cut off by the link's end: the process tree was just killed.
                    audited
                      ? Effect.void
                      : Effect.flatMap(Effect.timeoutOption(proc.exit, "1 second"), (info) =>
                          auditEnd(info._tag === "Some" ? info.value : undefined, true)
                        )
                  )
                })
              )
            ),
            sessionsScope
          )
        })

      const handle = (message: RelayMessage): Effect.Effect<void> => {
        const kind = message.kind
        switch (kind?.$case) {
          case "open":
            return open(kind.value)
          case "input": {
            const { sessionId, data, eof, caller } = kind.value
            const session = sessions.get(sessionId)
            if (session !== undefined)
              return Effect.zipRight(
                data.length > 0 ? audit.input(sessionId, "exec", caller, data.length) : Effect.void,
                Queue.offer(session.stdin, { data, eof })
              )
            if (data.length === 0) return Effect.void
            return onPty((ptys) =>
              Effect.zipRight(
                Effect.zipRight(
                  ptys.write(sessionId, data, caller?.principal ?? ""),
                  audit.input(sessionId, "pty", caller, data.length)
                ),
                supervise(
                  link.send({
                    kind: { $case: "ack", value: { sessionId, pipe: Pipe.PIPE_STDIN, bytes: data.length } }
                  }),
                  sessionsScope
                )
              )
            )
          }
          case "ack": {
            const { sessionId, pipe, bytes } = kind.value
            if (pipe !== Pipe.PIPE_STDOUT && pipe !== Pipe.PIPE_STDERR) return Effect.void
            const session = sessions.get(sessionId)
            if (session !== undefined) session.credit.give(bytes)
            else pumps.get(sessionId)?.credit.give(bytes)
            return Effect.void
          }
          case "signal": {
            const session = sessions.get(kind.value.sessionId)
            if (session !== undefined) return session.process.signal(kind.value.signal)
            return onPty((ptys) => ptys.signal(kind.value.sessionId, kind.value.signal))
          }
          case "resize":
            // Exec sessions have no terminal.
            return onPty((ptys) => ptys.resize(kind.value.sessionId, kind.value.cols, kind.value.rows))
          case "close": {
            const session = sessions.get(kind.value.sessionId)
            if (session !== undefined) {
              session.closing = true
              session.credit.abort()
              // The kill waits out the grace period: never on the loop that reads the link.
              return Effect.asVoid(Effect.forkIn(session.process.kill, sessionsScope))
            }
            // The kill goes on in PtySessions' scope; the pump reports the exit.
            return onPty((ptys) => Effect.forkIn(Effect.ignore(ptys.close(kind.value.sessionId)), sessionsScope))
          }
          case "replay":
            return replay(kind.value)
          default:
            // welcome (already handled by the transport), heartbeat (any message proves liveness), and message kinds
            // from newer relays.
            return Effect.void
        }
      }

      const heartbeatMillis = Duration.toMillis(options.heartbeatInterval)
      if (heartbeatMillis > 0) {
        const beat = Effect.flatMap(Clock.currentTimeMillis, (at) =>
          link.send({ kind: { $case: "heartbeat", value: { at } } })
        )
        yield* supervise(Effect.forever(Effect.zipRight(Effect.sleep(heartbeatMillis), beat)), scope)
      }

      const silence = Duration.decode(options.relaySilenceTimeout)
      const incoming =
        Duration.isFinite(silence) && Duration.toMillis(silence) > 0
          ? Stream.timeoutFail(link.incoming, () => new RelaySilentError({ timeout: silence }), silence)
          : link.incoming
      yield* Effect.raceFirst(Stream.runForEach(incoming, handle), Deferred.await(linkFailed))
    })
  )

interface Session {
  readonly id: string
  readonly process: RunningProcess
  readonly credit: Credit
  readonly stdin: Queue.Queue<StdinItem>
  /** The relay closed it (`SessionClose`). */
  closing: boolean
}

interface Pump {
  readonly credit: Credit
  /** Set right after the fork (the entry is registered first, so the pump's own cleanup always finds it). */
  fiber: Fiber.RuntimeFiber<void> | undefined
}

/** The `SessionExit.error` for a replay of a session the agent does not know. */
export const UNKNOWN_SESSION = "unknown session"

interface StdinItem {
  readonly data: Uint8Array
  readonly eof: boolean
}

const toSpec = (spec: WireExecSpec): ExecSpec => ({
  argv: spec.argv,
  shell: spec.shell,
  timeoutMs: spec.timeoutMs,
  stdin: spec.stdin,
  ...(Object.keys(spec.env).length > 0 ? { env: spec.env } : {}),
  ...(spec.cwd !== "" ? { cwd: spec.cwd } : {})
})

const pipeOf = (pipe: OutputChunk["pipe"]): Pipe => (pipe === "stdout" ? Pipe.PIPE_STDOUT : Pipe.PIPE_STDERR)

/** Joins consecutive chunks of the same pipe, up to `MAX_CHUNK` each, keeping the order of stdout and stderr. */
export const coalesce = (chunks: Iterable<OutputChunk>): ReadonlyArray<OutputChunk> => {
  const out: Array<OutputChunk> = []
  let pipe: OutputChunk["pipe"] | undefined
  let parts: Array<Uint8Array> = []
  let size = 0
  const flush = () => {
    if (pipe !== undefined && parts.length > 0)
      out.push({ pipe, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts, size) })
    parts = []
    size = 0
  }
  for (const chunk of chunks) {
    if (chunk.pipe !== pipe || size + chunk.data.length > MAX_CHUNK) flush()
    pipe = chunk.pipe
    parts.push(chunk.data)
    size += chunk.data.length
  }
  flush()
  return out
}

/** Sends one chunk of output, split to fit `MAX_CHUNK` and the credit; drops it once the session is closed. */
const sendOutput = <E>(session: Session, chunk: OutputChunk, send: Link<E>["send"]): Effect.Effect<void, E> =>
  Effect.gen(function* () {
    const data = chunk.data
    let offset = 0
    while (offset < data.length) {
      const granted = yield* session.credit.take(Math.min(MAX_CHUNK, data.length - offset))
      if (granted === 0) return
      const piece = Buffer.from(data.buffer, data.byteOffset + offset, granted)
      offset += granted
      yield* send({
        kind: { $case: "output", value: { sessionId: session.id, pipe: pipeOf(chunk.pipe), data: piece, offset: 0 } }
      })
    }
  })

/** Sends a piece of PTY output as STDOUT chunks with their offsets, each within `MAX_CHUNK` and the credit. */
const sendPtyOutput = <E>(
  sessionId: string,
  piece: PtyOutput,
  credit: Credit,
  send: Link<E>["send"]
): Effect.Effect<void, E> =>
  Effect.gen(function* () {
    const data = piece.data
    let offset = 0
    while (offset < data.length) {
      const granted = yield* credit.take(Math.min(MAX_CHUNK, data.length - offset))
      if (granted === 0) return
      const chunk = Buffer.from(data.buffer, data.byteOffset + offset, granted)
      yield* send({
        kind: {
          $case: "output",
          value: { sessionId, pipe: Pipe.PIPE_STDOUT, data: chunk, offset: piece.offset + offset }
        }
      })
      offset += granted
    }
  })

/** Writes stdin in arrival order, acknowledging each chunk once written; closes it after an `eof`. */
const writeStdin = <E>(session: Session, send: Link<E>["send"]): Effect.Effect<never, E> =>
  Effect.forever(
    Effect.gen(function* () {
      const item = yield* Queue.take(session.stdin)
      if (item.data.length > 0) {
        yield* session.process.write(item.data)
        yield* send({
          kind: { $case: "ack", value: { sessionId: session.id, pipe: Pipe.PIPE_STDIN, bytes: item.data.length } }
        })
      }
      if (item.eof) yield* session.process.closeStdin
    })
  )

/**
 * A session's output credit: bytes it may still send before the relay acknowledges some. One taker (the session's
 * output pump), many givers (acks arrive on the link's loop).
 */
interface Credit {
  /** Waits for credit and takes up to `max` bytes of it; 0 once aborted (the output is to be dropped). */
  readonly take: (max: number) => Effect.Effect<number>
  /** Returns `bytes` of credit, never beyond the window. */
  readonly give: (bytes: number) => void
  /** The reader is gone: `take` answers 0 from now on. */
  readonly abort: () => void
}

const makeCredit = (window: number): Credit => {
  const limit = Math.max(1, Math.floor(window))
  let available = limit
  let aborted = false
  let waiter: (() => void) | undefined
  const wake = () => {
    const w = waiter
    waiter = undefined
    w?.()
  }
  return {
    take: (max) =>
      Effect.async<number>((resume) => {
        const attempt = () => {
          if (aborted) return resume(Effect.succeed(0))
          if (available > 0) {
            const n = Math.min(max, available)
            available -= n
            return resume(Effect.succeed(n))
          }
          waiter = attempt
        }
        attempt()
        return Effect.sync(() => {
          waiter = undefined
        })
      }),
    give: (bytes) => {
      if (!(bytes > 0)) return
      available = Math.min(limit, available + bytes)
      wake()
    },
    abort: () => {
      aborted = true
      wake()
    }
  }
}
