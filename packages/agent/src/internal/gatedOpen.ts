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
 * error: the relay knows why it closed it). Nothing runs. So does an interrupt, which is the caller withdrawing its
 * request: a signal that stops a program (`WITHDRAWING`: Ctrl-C at `connect exec` sends INT) or Ctrl-C typed at a
 * held shell. Its lone `SessionExit` is the one of a program that signal ended (128 + n, `signal` set) with the error
 * `withdrew the request waiting for approval on <machine> (…); nothing ran`. Once decided, these are kept like any
 * other message: a command that runs gets the signal, a shell the keystroke.
 */
import type { ApprovalPending, RelayMessage, SessionOpen } from "@cmdop/domain/AgentLink"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type { Gate } from "../Gate.js"
import type { PendingApproval } from "./approvals.js"
import type { EngineContext } from "./engineContext.js"
import * as ProcessTree from "./processTree.js"

export interface GatedOpen {
  /** A session waiting for its decision. */
  readonly has: (id: string) => boolean
  /** Keeps a message for a held session; false when the session is not held. */
  readonly keep: (id: string, message: RelayMessage) => boolean
  /**
   * Stops waiting for the decision on the session `message` is for when it closes the session or withdraws the
   * request (an interrupt); false when it does neither, or the session is not waiting for a decision.
   */
  readonly ends: (message: RelayMessage) => boolean
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

/** Signals that withdraw a held request: those a person or a supervisor sends to stop a program. */
const WITHDRAWING: ReadonlySet<NodeJS.Signals> = new Set(["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGKILL"])

/** Ctrl-C as a terminal sends it (ETX), the key that interrupts a shell's foreground program. */
const CTRL_C = 0x03

/** Why a held session stops waiting for its decision: the relay closed it, or its caller withdrew the request. */
type End =
  { readonly _tag: "Closed" } | { readonly _tag: "Withdrawn"; readonly signal: NodeJS.Signals; readonly how: string }

/** What `message` does to a session waiting for its decision (a shell's when `shell`), if it ends the wait. */
const endOf = (message: RelayMessage, shell: boolean): End | undefined => {
  switch (message._tag) {
    case "SessionClose":
      return { _tag: "Closed" }
    case "SessionSignal": {
      const signal = ProcessTree.normalizeSignal(message.signal)
      return signal !== undefined && WITHDRAWING.has(signal) ? { _tag: "Withdrawn", signal, how: signal } : undefined
    }
    case "SessionInput":
      return shell && message.data.includes(CTRL_C) ? { _tag: "Withdrawn", signal: "SIGINT", how: "Ctrl-C" } : undefined
    default:
      return undefined
  }
}

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
  /** The held sessions whose decision is still to come: whether each is a shell, and what ends its wait. */
  const deciding = new Map<string, { readonly shell: boolean; readonly ended: Deferred.Deferred<End> }>()

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
      const ended = Deferred.unsafeMake<End>(FiberId.none)
      deciding.set(id, { shell: spec._tag === "Pty", ended })
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
      // Whatever came first, an end wins over a verdict that comes at the same time: `ends` took the session out of
      // `deciding` (and completed `ended`) in the same step.
      const decision = Effect.raceFirst(gate.check(check, onHold), Deferred.await(ended))
      const decide = Effect.flatMap(decision, (verdict) => {
        if (!deciding.delete(id) || !("allowed" in verdict)) {
          held.delete(id)
          return Effect.flatMap(Deferred.await(ended), (end) =>
            ctx.supervise(
              ctx.sendExit(
                id,
                end._tag === "Closed"
                  ? { exitCode: 126, timedOut: false }
                  : {
                      exitCode: 128 + ProcessTree.signalNumber(end.signal),
                      signal: ProcessTree.shortName(end.signal),
                      timedOut: false,
                      error: `withdrew the request waiting for approval on ${machine} (${end.how}); nothing ran`
                    }
              ),
              ctx.sessionsScope
            )
          )
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
    ends: (message) => {
      if (!("sessionId" in message)) return false
      const waiting = deciding.get(message.sessionId)
      const end = waiting === undefined ? undefined : endOf(message, waiting.shell)
      if (waiting === undefined || end === undefined) return false
      deciding.delete(message.sessionId)
      Deferred.unsafeDone(waiting.ended, Exit.succeed(end))
      return true
    },
    open
  }
}
