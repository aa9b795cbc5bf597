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
 * How things end:
 * - a session ends with exactly one `SessionExit`, after its last `SessionOutput`, once the output reached
 *   end-of-file and the command exited. `SessionClose` kills the process tree and drops output not yet sent (the
 *   reader is gone); the `SessionExit` still follows. `SessionSignal` only delivers the signal.
 * - a session that never ran (PTY, not supported yet; duplicate id; no spec) gets a lone `SessionExit` with `error`.
 * - `serve` returns when `incoming` ends, fails with the link's error when `incoming` or `send` fails, and fails with
 *   `RelaySilentError` when nothing arrives for `relaySilenceTimeout`. In every case all sessions are killed before
 *   it completes; no `SessionExit` is sent for them (the link is gone).
 */
import type {
  AgentMessage,
  ExecSpec as WireExecSpec,
  RelayMessage,
  SessionOpen
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
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ExecSpec, ExitInfo, OutputChunk, RunningProcess } from "./ProcessRunner.js"
import { ProcessRunner } from "./ProcessRunner.js"

/** Largest `SessionOutput.data` the engine sends. */
export const MAX_CHUNK = 64 * 1024

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
}

/** The relay sent nothing (not even a heartbeat) for too long; the daemon treats the stream as dead. */
export class RelaySilentError extends Data.TaggedError("RelaySilentError")<{ readonly timeout: Duration.Duration }> {
  override get message(): string {
    return `the relay sent nothing for ${Duration.format(this.timeout)}`
  }
}

/** The error of a session that cannot run on this agent yet. */
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

      const reject = (sessionId: string, error: string) =>
        supervise(sendExit(sessionId, { exitCode: 126, timedOut: false, error }), sessionsScope)

      const open = (request: SessionOpen) =>
        Effect.gen(function* () {
          const id = request.sessionId
          if (id === "") return
          if (sessions.has(id)) return yield* reject(id, `session ${id} is already open`)
          const kind = request.kind
          if (kind === undefined) return yield* reject(id, "the session asks for neither exec nor pty")
          if (kind.$case === "pty") return yield* reject(id, PTY_UNSUPPORTED)
          const sessionScope = yield* Scope.fork(sessionsScope, ExecutionStrategy.sequential)
          const proc = yield* Scope.extend(runner.spawn(toSpec(kind.value)), sessionScope)
          const session: Session = {
            id,
            process: proc,
            credit: makeCredit(options.window),
            stdin: yield* Queue.unbounded<StdinItem>()
          }
          sessions.set(id, session)
          yield* supervise(writeStdin(session, link.send), sessionScope)
          yield* supervise(
            Effect.gen(function* () {
              yield* Stream.runForEach(proc.output, (chunk) => sendOutput(session, chunk, link.send))
              const info = yield* proc.exit
              sessions.delete(id)
              yield* sendExit(id, info)
            }).pipe(
              Effect.ensuring(
                Effect.suspend(() => {
                  if (sessions.get(id) === session) sessions.delete(id)
                  return Scope.close(sessionScope, Exit.void)
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
            const session = sessions.get(kind.value.sessionId)
            if (session === undefined) return Effect.void
            return Queue.offer(session.stdin, { data: kind.value.data, eof: kind.value.eof })
          }
          case "ack": {
            const session = sessions.get(kind.value.sessionId)
            if (session !== undefined && (kind.value.pipe === Pipe.PIPE_STDOUT || kind.value.pipe === Pipe.PIPE_STDERR))
              session.credit.give(kind.value.bytes)
            return Effect.void
          }
          case "signal": {
            const session = sessions.get(kind.value.sessionId)
            return session === undefined ? Effect.void : session.process.signal(kind.value.signal)
          }
          case "close": {
            const session = sessions.get(kind.value.sessionId)
            if (session === undefined) return Effect.void
            session.credit.abort()
            // The kill waits out the grace period: never on the loop that reads the link.
            return Effect.asVoid(Effect.forkIn(session.process.kill, sessionsScope))
          }
          default:
            // welcome (already handled by the transport), heartbeat (any message proves liveness), resize (exec
            // sessions have no terminal), and message kinds from newer relays.
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
}

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
