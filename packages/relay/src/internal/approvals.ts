/**
 * The gate's pending `ask`s as the relay sees them: each online agent reports the sessions its gate holds
 * (`ApprovalPending`, `ApprovalSettled`), and workspace key holders list and answer them (`ApprovalAnswer` back to
 * the agent, with the key's principal as the approver). Share links never see or answer approvals. What is pending
 * lives with the agent's connection: when the stream drops, its held sessions are gone too.
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import { MachineError } from "@cmdop/domain/MachineError"
import * as Effect from "effect/Effect"
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

/** The agent's report of a held or settled session. */
export const record = (conn: Connection, message: AgentLink.ApprovalPending | AgentLink.ApprovalSettled) =>
  Effect.sync(() => {
    let pending = pendingOf.get(conn)
    if (pending === undefined) pendingOf.set(conn, (pending = new Map()))
    if (message._tag === "ApprovalPending") pending.set(message.approvalId, message)
    else pending.delete(message.approvalId)
  })

export const make = (ctx: Pick<CoreContext, "registry">, tenancy: Pick<Tenancy, "workspaceOnly">) => {
  const ofWorkspace = (caller: Caller) => ctx.registry.all().filter((conn) => conn.workspaceId === caller.workspaceId)

  const listApprovals = Effect.fn("RelayCore.listApprovals")(function* (caller: Caller) {
    yield* tenancy.workspaceOnly(caller, "see approvals")
    return ofWorkspace(caller)
      .flatMap((conn) =>
        [...(pendingOf.get(conn)?.values() ?? [])].map((approval) => ({ machine: conn.hostname, approval }))
      )
      .sort((a, b) => a.approval.createdAt - b.approval.createdAt) satisfies ReadonlyArray<MachineApproval>
  })

  const answerApproval = Effect.fn("RelayCore.answerApproval")(function* (
    caller: Caller,
    answer: { readonly approvalId: string; readonly approve: boolean; readonly forLink: boolean }
  ) {
    yield* tenancy.workspaceOnly(caller, "answer approvals")
    const conn = ofWorkspace(caller).find((c) => pendingOf.get(c)?.has(answer.approvalId))
    if (conn === undefined)
      return yield* new MachineError({ reason: "NotFound", query: `approval ${answer.approvalId}`, candidates: [] })
    pendingOf.get(conn)?.delete(answer.approvalId)
    yield* conn.send({ _tag: "ApprovalAnswer", ...answer, approver: `${caller.principal} (through the relay)` })
    return { machine: conn.hostname }
  })

  return { listApprovals, answerApproval }
}
