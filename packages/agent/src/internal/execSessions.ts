/**
 * The exec sessions of one link: each command runs through `ProcessRunner` in its own scope; its stdout and stderr go
 * out as `SessionOutput` chunks of at most `MAX_CHUNK` bytes within the session's credit (stdout and stderr share
 * it); stdin is written in order, each written chunk acknowledged with a PIPE_STDIN `SessionAck`. A session ends
 * with exactly one `SessionExit`, after its last output. All of them die with the link (no exit is sent then).
 */
import type { Caller, ExecSpec as LinkExecSpec } from "@cmdop/domain/AgentLink"
import * as GrpcWritten from "@cmdop/grpc/GrpcWritten"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as OutputHeadroom from "@cmdop/protocol/OutputHeadroom"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as AuditLog from "../AuditLog.js"
import type { ExecSpec, ExitInfo, OutputChunk, RunningProcess } from "../ProcessRunner.js"
import type { ProcessRunner } from "../ProcessRunner.js"
import * as Credit from "./credit.js"
import type { EngineContext } from "./engineContext.js"
import type * as SessionAudit from "./sessionAudit.js"
import { coalesce, sendWithin } from "./outputChunks.js"

/** How long the audit of a session cut off by the link's end waits for the killed command's exit status. */
const CUT_OFF_EXIT_WAIT = "1 second"

export interface ExecSessions {
  readonly has: (id: string) => boolean
  /** Starts session `id` (the caller checked that the id is free). */
  readonly open: (id: string, spec: LinkExecSpec, caller: Caller | undefined) => Effect.Effect<void>
  /** The operations below answer `false` for an id that is not a live exec session. */
  readonly input: (id: string, data: Uint8Array, eof: boolean, caller: Caller | undefined) => Effect.Effect<boolean>
  readonly ack: (id: string, bytes: number) => Effect.Effect<boolean>
  readonly signal: (id: string, name: string) => Effect.Effect<boolean>
  /** Kills the process tree and drops output not yet sent; the `SessionExit` still follows. */
  readonly close: (id: string) => Effect.Effect<boolean>
}

interface Session {
  readonly id: string
  readonly process: RunningProcess
  readonly credit: Credit.Credit
  readonly stdin: Queue.Queue<StdinItem>
  /** The session was opened with stdin; without, input is dropped (the child's stdin is already closed). */
  readonly takesStdin: boolean
  /** The relay closed it (`SessionClose`). */
  closing: boolean
}

interface StdinItem {
  readonly data: Uint8Array
  readonly eof: boolean
}

export const make = <E>(ctx: EngineContext<E>, runner: ProcessRunner["Type"]): ExecSessions => {
  const sessions = new Map<string, Session>()
  const withSession = (id: string, f: (session: Session) => Effect.Effect<void>) =>
    Effect.suspend(() => {
      const session = sessions.get(id)
      return session === undefined ? Effect.succeed(false) : Effect.as(f(session), true)
    })

  const open = (id: string, wire: LinkExecSpec, caller: Caller | undefined) =>
    Effect.gen(function* () {
      const who = AuditLog.callerFields(caller)
      // The open line goes in before the command starts: one synchronous append (`AuditLog.makeFile`), cheaper
      // than a fiber of its own, and its end and input lines follow it by construction.
      yield* Effect.uninterruptible(ctx.audit.open(id, "exec", who, () => AuditLog.digestArgv(wire.argv)))
      const sessionScope = yield* Scope.fork(ctx.sessionsScope, ExecutionStrategy.sequential)
      const proc = yield* Scope.extend(runner.spawn(toSpec(wire)), sessionScope)
      const session: Session = {
        id,
        process: proc,
        credit: yield* Credit.make(ctx.options.window),
        stdin: yield* Queue.unbounded<StdinItem>(),
        takesStdin: wire.stdin,
        closing: false
      }
      sessions.set(id, session)
      const auditEnd = auditOnce(ctx, session, who)
      // Without stdin the relay sends none (`SessionInput` is never forwarded then): no writer fiber to start.
      if (wire.stdin) yield* ctx.supervise(writeStdin(session, ctx.send), sessionScope)
      yield* ctx.supervise(
        Effect.gen(function* () {
          // A pipe read brings at most a pipe buffer (typically 64 KiB); what has piled up goes out as fewer, larger messages.
          yield* PullStream.runForEachChunk(proc.output, (chunks) =>
            Effect.forEach(coalesce(chunks), (chunk) => sendOutput(session, chunk, ctx.send), { discard: true })
          )
          const info = yield* proc.exit
          sessions.delete(id)
          yield* auditEnd.record(info, false)
          yield* ctx.sendExit(id, info)
        }).pipe(
          Effect.ensuring(
            Effect.suspend(() => {
              if (sessions.get(id) === session) sessions.delete(id)
              return Effect.zipRight(
                Scope.close(sessionScope, Exit.void),
                // Cut off by the link's end: the process tree was just killed.
                auditEnd.done()
                  ? Effect.void
                  : Effect.flatMap(Effect.timeoutOption(proc.exit, CUT_OFF_EXIT_WAIT), (info) =>
                      auditEnd.record(info._tag === "Some" ? info.value : undefined, true)
                    )
              )
            })
          )
        ),
        ctx.sessionsScope
      )
    })

  return {
    has: (id) => sessions.has(id),
    open,
    input: (id, data, eof, caller) =>
      withSession(id, (session) =>
        Effect.zipRight(
          data.length > 0 ? ctx.audit.input(id, "exec", caller, data.length) : Effect.void,
          session.takesStdin ? Queue.offer(session.stdin, { data, eof }) : Effect.void
        )
      ),
    ack: (id, bytes) => withSession(id, (session) => session.credit.give(bytes)),
    signal: (id, name) => withSession(id, (session) => session.process.signal(name)),
    close: (id) =>
      withSession(id, (session) => {
        session.closing = true
        // The kill waits out the grace period: never on the loop that reads the link.
        return Effect.zipRight(
          session.credit.abort,
          Effect.asVoid(Effect.forkIn(session.process.kill, ctx.sessionsScope))
        )
      })
  }
}

/** Records the session's end in the audit log once (by its own end, or as cut off by the link's end). */
const auditOnce = <E>(ctx: EngineContext<E>, session: Session, who: SessionAudit.Who) => {
  let audited = ctx.options.auditLog === undefined
  return {
    done: () => audited,
    record: (info: ExitInfo | undefined, cutOff: boolean) =>
      Effect.suspend(() => {
        if (audited) return Effect.void
        audited = true
        // The stdin tallied so far goes in before the end line (the open line went in before the command started).
        return Effect.zipRight(
          ctx.audit.flushInput(session.id),
          ctx.audit.end(session.id, "exec", who, {
            ...(info === undefined ? {} : { exit_code: info.exitCode, duration_ms: info.durationMs }),
            reason: cutOff
              ? "link closed"
              : info?.timedOut
                ? "timeout"
                : (info?.error ?? (session.closing ? "closed" : "exit"))
          })
        )
      })
  }
}

const toSpec = (spec: LinkExecSpec): ExecSpec => ({
  argv: spec.argv,
  shell: spec.shell,
  timeoutMs: spec.timeoutMs,
  stdin: spec.stdin,
  ...(Object.keys(spec.env).length > 0 ? { env: { ...spec.env } } : {}),
  ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {})
})

/**
 * Sends one chunk of output within `MAX_CHUNK` and the credit; drops it once the session is closed. A chunk in a
 * buffer of the process runner's (`OutputHeadroom`) sent as one message goes back to it once written.
 */
const sendOutput = <E>(session: Session, chunk: OutputChunk, send: EngineContext<E>["send"]) => {
  const reusable = OutputHeadroom.owns(chunk.data)
  return sendWithin(chunk.data, session.credit, (data, at) => {
    const message = { _tag: "SessionOutput", sessionId: session.id, pipe: chunk.pipe, data, offset: 0 } as const
    if (reusable && at === 0 && data.length === chunk.data.length)
      GrpcWritten.whenWritten(message, () => OutputHeadroom.release(data))
    return send(message)
  })
}

/** Writes stdin in arrival order, acknowledging each chunk once written; closes it after an `eof`. */
const writeStdin = <E>(session: Session, send: EngineContext<E>["send"]): Effect.Effect<never, E> =>
  Effect.forever(
    Effect.gen(function* () {
      const item = yield* Queue.take(session.stdin)
      if (item.data.length > 0) {
        yield* session.process.write(item.data)
        yield* send({ _tag: "SessionAck", sessionId: session.id, pipe: "stdin", bytes: item.data.length })
      }
      if (item.eof) yield* session.process.closeStdin
    })
  )
