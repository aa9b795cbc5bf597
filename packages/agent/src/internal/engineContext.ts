/**
 * What every part of one link's engine shares: the link, the options, the scopes sessions and PTY pumps run in,
 * the audit recorder, and how a background part reports a failed send (it ends `serve`).
 */
import type { AgentMessage } from "@cmdop/domain/AgentLink"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Scope from "effect/Scope"
import type { Link, Options } from "../AgentEngine.js"
import type { ExitInfo } from "../ProcessRunner.js"
import * as SessionAudit from "./sessionAudit.js"

/** A session's end as the engine reports it; `durationMs` defaults to 0 (a session that never ran). */
export type ExitReport = Omit<ExitInfo, "durationMs"> & { readonly durationMs?: number }

export interface EngineContext<E> {
  readonly send: (message: AgentMessage) => Effect.Effect<void, E>
  readonly options: Options
  readonly audit: SessionAudit.SessionAudit
  /** Holds every exec session (and short-lived sends); closing it kills the sessions in parallel. */
  readonly sessionsScope: Scope.CloseableScope
  /** Holds this link's PTY output pumps: closing it stops them; the PTY sessions keep running. */
  readonly pumpsScope: Scope.CloseableScope
  /** A background part whose failure (a failed send) ends `serve` with that error; interruption ends only it. */
  readonly guard: <A>(effect: Effect.Effect<A, E>) => Effect.Effect<void>
  /** Forks `guard(effect)` into `into`. */
  readonly supervise: <A>(effect: Effect.Effect<A, E>, into: Scope.Scope) => Effect.Effect<void>
  /** Completes when a supervised part failed. */
  readonly failed: Effect.Effect<never, E>
  readonly sendExit: (sessionId: string, info: ExitReport) => Effect.Effect<void, E>
  /** Answers a session that never ran with a lone `SessionExit` carrying `error`. */
  readonly reject: (sessionId: string, error: string, exitCode?: number) => Effect.Effect<void>
}

/** The context of one `serve`, living in the current scope. */
export const make = <E>(link: Link<E>, options: Options): Effect.Effect<EngineContext<E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const sessionsScope = yield* Scope.fork(scope, ExecutionStrategy.parallel)
    const pumpsScope = yield* Scope.fork(scope, ExecutionStrategy.parallel)
    const linkFailed = yield* Deferred.make<never, E>()

    const guard: EngineContext<E>["guard"] = (effect) =>
      Effect.asVoid(
        Effect.catchAllCause(effect, (cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.void : Deferred.failCause(linkFailed, cause)
        )
      )
    const supervise: EngineContext<E>["supervise"] = (effect, into) => Effect.asVoid(Effect.forkIn(guard(effect), into))

    const sendExit: EngineContext<E>["sendExit"] = (sessionId, info) =>
      link.send({
        _tag: "SessionExit",
        sessionId,
        exitCode: info.exitCode,
        ...(info.signal ? { signal: info.signal } : {}),
        timedOut: info.timedOut,
        ...(info.error ? { error: info.error } : {}),
        durationMs: info.durationMs ?? 0
      })

    return {
      send: link.send,
      options,
      audit: SessionAudit.make(options.auditLog),
      sessionsScope,
      pumpsScope,
      guard,
      supervise,
      failed: Deferred.await(linkFailed),
      sendExit,
      reject: (sessionId, error, exitCode = 126) =>
        supervise(sendExit(sessionId, { exitCode, timedOut: false, error }), sessionsScope)
    }
  })
