/**
 * `SessionOpen` through the machine's gate (`Gate.ts`), before anything runs. The decision runs in a fiber of its
 * own (an `ask` may hold it for up to a minute; the link's loop goes on), and until it is made the session is
 * "held": the relay's messages for it (stdin, resize, close…) are kept in order and handed to the session once it
 * starts. A refused session gets a lone `SessionExit` (126, `gateDenied`) whose error is the refusal; what was kept
 * is dropped. An attach check (`Attach`) is decided as mode `attach`; admitted, it is answered with a lone exit 0.
 * While an exec is held for approval its caller reads `waiting for approval on <machine>…` on stderr.
 *
 * A `SessionClose` while the decision is still to come (the caller went away, the session was killed) ends the wait:
 * the gate drops the request, the relay is told it is settled, and the session gets a lone `SessionExit` (126, no
 * error: the relay knows why it closed it). Nothing runs. Once decided, a close is kept like any other message.
 */
import type { ApprovalPending, RelayMessage, SessionOpen } from "@cmdop/domain/AgentLink"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type { Gate } from "../Gate.js"
import type { PendingApproval } from "./approvals.js"
import type { EngineContext } from "./engineContext.js"

export interface GatedOpen {
  /** A session waiting for its decision. */
  readonly has: (id: string) => boolean
  /** Keeps a message for a held session; false when the session is not held. */
  readonly keep: (id: string, message: RelayMessage) => boolean
  /** Stops waiting for the decision on session `id` (`SessionClose`); false when it is not waiting for one. */
  readonly close: (id: string) => boolean
  /**
   * Decides `message`, then runs `start` and hands the kept messages to `route` (which must not keep them again),
   * or refuses it.
   */
  readonly open: (
    message: SessionOpen,
    start: Effect.Effect<void>,
    route: (message: RelayMessage) => Effect.Effect<void>
  ) => Effect.Effect<void>
}

const encoder = new TextEncoder()

const toPending = (p: PendingApproval): ApprovalPending => ({
  _tag: "ApprovalPending",
  approvalId: p.id,
  sessionId: p.session_id,
  caller: p.caller,
  callerKind: p.caller_kind,
  ...(p.share_id === null || p.share_id === "" ? {} : { shareId: p.share_id }),
  ...(p.user === null || p.user === "" ? {} : { user: p.user }),
  mode: p.mode,
  command: p.command,
  rule: p.rule,
  createdAt: p.created_at,
  expiresAt: p.expires_at
})

export const make = <E>(ctx: EngineContext<E>, gate: Gate["Type"], machine: string): GatedOpen => {
  const held = new Map<string, Array<RelayMessage>>()
  /** The held sessions whose decision is still to come, each with what ends the wait. */
  const deciding = new Map<string, Deferred.Deferred<void>>()

  /** Hands the kept messages over in order; the last check and the release happen in one step. */
  const release = (id: string, route: (message: RelayMessage) => Effect.Effect<void>): Effect.Effect<void> =>
    Effect.suspend(() => {
      const next = held.get(id)?.shift()
      if (next === undefined) {
        held.delete(id)
        return Effect.void
      }
      return Effect.zipRight(route(next), release(id, route))
    })

  const open: GatedOpen["open"] = (message, start, route) =>
    Effect.suspend(() => {
      const { sessionId: id, spec, caller } = message
      held.set(id, [])
      const closed = Deferred.unsafeMake<void>(FiberId.none)
      deciding.set(id, closed)
      const check =
        spec._tag === "Exec"
          ? { sessionId: id, caller, mode: "exec" as const, argv: spec.argv, shell: spec.shell, env: spec.env }
          : { sessionId: id, caller, mode: spec._tag === "Pty" ? ("shell" as const) : ("attach" as const) }
      let approvalId: string | undefined
      // The relay lists the held session for workspace key holders (who may answer it); the caller of an exec
      // reads that it waits, never who could approve.
      const onHold = (pending: PendingApproval) =>
        Effect.zipRight(
          Effect.sync(() => void (approvalId = pending.id)),
          ctx.supervise(
            Effect.zipRight(
              ctx.send(toPending(pending)),
              spec._tag === "Exec"
                ? ctx.send({
                    _tag: "SessionOutput",
                    sessionId: id,
                    pipe: "stderr",
                    data: encoder.encode(`waiting for approval on ${machine}…\n`),
                    offset: 0
                  })
                : Effect.void
            ),
            ctx.sessionsScope
          )
        )
      const settled = Effect.suspend(() =>
        approvalId === undefined
          ? Effect.void
          : ctx.supervise(ctx.send({ _tag: "ApprovalSettled", approvalId }), ctx.sessionsScope)
      )
      // A close wins over a verdict that comes at the same time: `close` took the session out of `deciding`.
      const decision = Effect.raceFirst(gate.check(check, onHold), Effect.as(Deferred.await(closed), undefined))
      const decide = Effect.flatMap(decision, (verdict) => {
        if (!deciding.delete(id) || verdict === undefined) {
          held.delete(id)
          return ctx.supervise(ctx.sendExit(id, { exitCode: 126, timedOut: false }), ctx.sessionsScope)
        }
        if (verdict.allowed) return Effect.zipRight(start, release(id, route))
        held.delete(id)
        return ctx.supervise(
          ctx.send({
            _tag: "SessionExit",
            sessionId: id,
            exitCode: 126,
            timedOut: false,
            error: verdict.message,
            durationMs: 0,
            gateDenied: true
          }),
          ctx.sessionsScope
        )
      })
      return Effect.asVoid(
        Effect.forkIn(
          decide.pipe(
            Effect.ensuring(
              Effect.zipRight(
                Effect.sync(() => {
                  held.delete(id)
                  deciding.delete(id)
                }),
                settled
              )
            )
          ),
          ctx.sessionsScope
        )
      )
    })

  return {
    has: (id) => held.has(id),
    keep: (id, message) => {
      const kept = held.get(id)
      if (kept === undefined) return false
      kept.push(message)
      return true
    },
    close: (id) => {
      const closed = deciding.get(id)
      if (closed === undefined) return false
      deciding.delete(id)
      Deferred.unsafeDone(closed, Exit.void)
      return true
    },
    open
  }
}
