/**
 * The machine's gate as the agent runs it: every session the relay opens (exec, a new interactive shell, an attach
 * to a live one) is decided by the `permissions.yaml` in force (`@cmdop/gate`'s `PolicyStore`) before anything runs,
 * and every decision is one `gate` line in the machine's audit log.
 *
 * - allow: the session starts; deny: it never runs, and the caller reads one line starting with
 *   `refused by the machine's permissions`. A guest reads only the outcome; a key or a signed-in user also reads the
 *   reason and the rule (`file:line`, `floor`, `default`).
 * - ask: the session is held (the caller is told it waits for approval on this machine, never who could approve)
 *   until an operator answers (`Approvals`: on the machine with `cmdop agent approve|deny`, or through the relay);
 *   no answer within the timeout (60 s) is a deny. An approval for the link lets later asks of that share link
 *   through while the daemon runs.
 *
 * The relay names the caller in `SessionOpen.caller`; a session without one is treated as a guest's.
 */
import * as AuditRecord from "@cmdop/gate/AuditRecord"
import type { Decision } from "@cmdop/gate/Decide"
import type { Mode } from "@cmdop/gate/Policy"
import { PolicyStore } from "@cmdop/gate/PolicyStore"
import type { GateRequest } from "@cmdop/gate/Request"
import type * as AgentLink from "@cmdop/domain/AgentLink"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as AuditLog from "./AuditLog.js"
import * as Approvals from "./internal/approvals.js"

/** Every refusal the caller reads starts with this. */
export const REFUSED = "refused by the machine's permissions"

/** What the engine asks about one session. */
export interface Check {
  readonly sessionId: string
  readonly caller: AgentLink.Caller | undefined
  readonly mode: Mode
  readonly argv?: ReadonlyArray<string>
  readonly shell?: boolean
  readonly env?: Readonly<Record<string, string>>
}

export type Verdict = { readonly allowed: true } | { readonly allowed: false; readonly message: string }

export class Gate extends Context.Tag("@cmdop/agent/Gate")<
  Gate,
  {
    /** Decides `check`; `onHold` runs when an `ask` holds it (with the approval id and this machine's deadline). */
    readonly check: (
      check: Check,
      onHold: (pending: Approvals.PendingApproval) => Effect.Effect<void>
    ) => Effect.Effect<Verdict>
    /** The pending asks, and how to answer them. */
    readonly approvals: Approvals.Approvals
    /** False while no `permissions.yaml` is in force. */
    readonly configured: Effect.Effect<boolean>
  }
>() {}

/** The gate's view of the relay's caller. */
export const toGateRequest = (check: Check): GateRequest => {
  const caller = check.caller
  const kind = caller?.kind ?? "guest"
  return {
    caller: {
      kind,
      ...(kind === "user" && caller !== undefined && caller.principal !== "" ? { user: caller.principal } : {}),
      ...(caller?.shareId !== undefined ? { shareId: caller.shareId } : {}),
      ...(caller !== undefined && caller.principal !== "" ? { name: caller.principal } : {})
    },
    mode: check.mode,
    ...(check.argv !== undefined ? { argv: check.argv } : {}),
    ...(check.shell !== undefined ? { shell: check.shell } : {}),
    ...(check.env !== undefined ? { env: check.env } : {})
  }
}

/** The refusal the caller reads: guests only the outcome, keys and users the reason and the rule too. */
export const refusal = (request: GateRequest, decision: Decision, why?: string): string => {
  if (request.caller.kind === "guest")
    return why === undefined ? `${REFUSED}: not allowed for this link` : `${REFUSED}: ${why}`
  const detail = why ?? decision.reason
  return detail.includes(decision.rule) ? `${REFUSED}: ${detail}` : `${REFUSED}: ${detail} (rule: ${decision.rule})`
}

/** What an operator reads about a held request. */
const describe = (request: GateRequest): string =>
  request.mode === "exec"
    ? `${request.shell === true ? "sh -c " : ""}${JSON.stringify(request.argv ?? [])}`
    : `${request.mode} session`

/** The gate over the `PolicyStore` in context, writing to `auditLog` (none: nothing is recorded). */
export const make = (options: {
  readonly auditLog?: AuditLog.AuditLog["Type"]
  readonly approvalTimeout?: Duration.DurationInput
}): Effect.Effect<Gate["Type"], never, PolicyStore> =>
  Effect.gen(function* () {
    const store = yield* PolicyStore
    const approvals = yield* Approvals.make(
      options.approvalTimeout === undefined ? {} : { timeout: options.approvalTimeout }
    )
    const audit = (check: Check, request: GateRequest, decision: Decision, approver?: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (at) => {
        if (options.auditLog === undefined) return Effect.void
        const r = AuditRecord.fromDecision(request, decision, at, approver)
        return options.auditLog
          .append({
            ts: AuditLog.timestamp(at),
            event: "gate",
            decision: r.decision,
            caller: r.caller,
            caller_kind: r.caller_kind,
            share_id: r.share_id,
            user: r.user,
            session_id: check.sessionId,
            mode: r.mode,
            ...(r.command_digest === null ? {} : { command_digest: r.command_digest }),
            rule: r.rule,
            approver: r.approver
          })
          .pipe(Effect.catchAll((error) => Effect.logWarning(`cannot write the audit log: ${error.message}`)))
      })

    const check: Gate["Type"]["check"] = (check, onHold) =>
      Effect.gen(function* () {
        const request = toGateRequest(check)
        const decision = yield* store.decide(request)
        if (decision.action === "allow") {
          yield* audit(check, request, decision)
          return { allowed: true } as const
        }
        if (decision.action === "deny") {
          yield* audit(check, request, decision)
          return { allowed: false, message: refusal(request, decision) } as const
        }
        const granted = yield* approvals.grantedForLink(request.caller.shareId)
        if (granted !== undefined) {
          yield* audit(check, request, { ...decision, action: "allow" }, `${granted} (for the link)`)
          return { allowed: true } as const
        }
        yield* audit(check, request, decision)
        const outcome = yield* approvals.request(
          {
            session_id: check.sessionId,
            caller: request.caller.name ?? request.caller.kind,
            caller_kind: request.caller.kind,
            share_id: request.caller.shareId ?? null,
            user: request.caller.user ?? null,
            mode: request.mode,
            command: describe(request),
            rule: decision.rule
          },
          onHold
        )
        yield* audit(check, request, { ...decision, action: outcome.approved ? "allow" : "deny" }, outcome.approver)
        if (outcome.approved) return { allowed: true } as const
        const why = outcome.timedOut ? "no approval came in time" : "the request was not approved"
        return { allowed: false, message: refusal(request, decision, why) } as const
      }).pipe(Effect.withSpan("Gate.check", { attributes: { mode: check.mode }, captureStackTrace: false }))

    return Gate.of({
      check,
      approvals,
      configured: Effect.map(store.current, (policy) => policy !== undefined)
    })
  })

/** The gate over the `PolicyStore` in context. */
export const layer = (options: {
  readonly auditLog?: AuditLog.AuditLog["Type"]
}): Layer.Layer<Gate, never, PolicyStore> => Layer.effect(Gate, make(options))
