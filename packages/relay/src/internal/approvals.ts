/**
 * The gate's pending `ask`s as the relay sees them: each online agent reports the sessions its gate holds
 * (`ApprovalPending`, `ApprovalSettled`), and workspace key holders list and answer them (`ApprovalAnswer` back to
 * the agent, with the key's principal as the approver). Share links never see or answer approvals. What is pending
 * lives with the agent's connection: when the stream drops, its held sessions are gone too. A request whose session
 * the relay no longer has (its exec's or attach check's client went away, and the relay told the agent
 * `SessionClose`) is not pending any more, whether or not the agent has said so yet: it is neither listed nor
 * answered.
 *
 * The caller of a held shell or attach hears of it through `whileHeld` (the relay tells it `waiting for approval
 * on <machine>…`; an exec's caller reads the agent's own line on stderr).
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import { RelayError } from "@cmdop/domain/RelayError"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Caller } from "../Authenticator.js"
import type { CoreContext } from "./coreContext.js"
import type { Connection } from "./sessions.js"
import type { Tenancy } from "./tenancy.js"

/** A pending approval and the machine it waits on. */
export interface MachineApproval {
  readonly machine: string
  readonly approval: AgentLink.ApprovalPending
}

const pendingOf = new WeakMap<Connection, Map<string, AgentLink.ApprovalPending>>()

/** Whether the relay still has the session `approval` holds (someone still waits for it). */
const live = (conn: Connection, approval: AgentLink.ApprovalPending) =>
  conn.sessions.has(approval.sessionId) || conn.ptys.has(approval.sessionId)

/** The connection's pending approvals, those whose session is gone dropped. */
const pendingNow = (conn: Connection): ReadonlyArray<AgentLink.ApprovalPending> => {
  const pending = pendingOf.get(conn)
  if (pending === undefined) return []
  for (const [id, approval] of pending) if (!live(conn, approval)) pending.delete(id)
  return [...pending.values()]
}

/** Who waits to hear that a session (by id) is held: the attach streams of its caller. */
const listenersOf = new WeakMap<Connection, Map<string, Set<(held: AgentLink.ApprovalPending) => void>>>()

/** The agent's report of a held or settled session. */
export const record = (conn: Connection, message: AgentLink.ApprovalPending | AgentLink.ApprovalSettled) =>
  Effect.sync(() => {
    let pending = pendingOf.get(conn)
    if (pending === undefined) pendingOf.set(conn, (pending = new Map()))
    if (message._tag === "ApprovalPending") {
      if (!live(conn, message)) return
      pending.set(message.approvalId, message)
      for (const listener of listenersOf.get(conn)?.get(message.sessionId) ?? []) listener(message)
    } else pending.delete(message.approvalId)
  })

/**
 * Calls `onHeld` when the agent's gate holds session `sessionId` (at once if it already does), for the life of the
 * scope.
 */
export const whileHeld = (
  conn: Connection,
  sessionId: string,
  onHeld: (held: AgentLink.ApprovalPending) => void
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let bySession = listenersOf.get(conn)
      if (bySession === undefined) listenersOf.set(conn, (bySession = new Map()))
      let listeners = bySession.get(sessionId)
      if (listeners === undefined) bySession.set(sessionId, (listeners = new Set()))
      listeners.add(onHeld)
      for (const held of pendingOf.get(conn)?.values() ?? []) if (held.sessionId === sessionId) onHeld(held)
    }),
    () =>
      Effect.sync(() => {
        const bySession = listenersOf.get(conn)
        const listeners = bySession?.get(sessionId)
        listeners?.delete(onHeld)
        if (listeners?.size === 0) bySession?.delete(sessionId)
      })
  )

export const make = (ctx: Pick<CoreContext, "registry" | "settings">, tenancy: Pick<Tenancy, "workspaceOnly">) => {
  const ofWorkspace = (caller: Caller) => ctx.registry.all().filter((conn) => conn.workspaceId === caller.workspaceId)

  const listApprovals = Effect.fn("RelayCore.listApprovals")(function* (caller: Caller) {
    yield* tenancy.workspaceOnly(caller, "see approvals")
    return ofWorkspace(caller)
      .flatMap((conn) => pendingNow(conn).map((approval) => ({ machine: conn.hostname, approval })))
      .sort((a, b) => a.approval.createdAt - b.approval.createdAt) satisfies ReadonlyArray<MachineApproval>
  })

  const answerApproval = Effect.fn("RelayCore.answerApproval")(function* (
    caller: Caller,
    answer: { readonly approvalId: string; readonly approve: boolean; readonly forLink: boolean }
  ) {
    yield* tenancy.workspaceOnly(caller, "answer approvals")
    const conn = ofWorkspace(caller).find((c) => pendingNow(c).some((a) => a.approvalId === answer.approvalId))
    if (conn === undefined)
      return yield* new RelayError({
        reason: "InvalidRequest",
        server: ctx.settings.server,
        detail: `no pending approval ${answer.approvalId}; list them with cmdop connect approvals`
      })
    pendingOf.get(conn)?.delete(answer.approvalId)
    yield* conn.send({ _tag: "ApprovalAnswer", ...answer, approver: `${caller.principal} (through the relay)` })
    return { machine: conn.hostname }
  })

  return { listApprovals, answerApproval }
}
