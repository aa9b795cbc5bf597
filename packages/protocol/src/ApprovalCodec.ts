/**
 * The gate's pending approvals between the domain (`AgentLink.ApprovalPending`) and the wire (approvals.proto):
 * on the agent's stream, and in `ApprovalService` answers to workspace key holders.
 */
import type * as Link from "@cmdop/domain/AgentLink"
import type * as Wire from "./generated/cmdop/connect/v1/approvals.js"

const KINDS = ["key", "user", "guest"] as const
const MODES = ["exec", "shell", "attach"] as const

export const pendingToWire = (m: Link.ApprovalPending): Wire.ApprovalPending => ({
  approvalId: m.approvalId,
  sessionId: m.sessionId,
  caller: m.caller,
  callerKind: m.callerKind,
  shareId: m.shareId ?? "",
  user: m.user ?? "",
  mode: m.mode,
  command: m.command,
  rule: m.rule,
  createdAt: m.createdAt,
  expiresAt: m.expiresAt
})

/** An unknown caller kind reads as `guest`, an unknown mode as `exec` (the strictest readings). */
export const pendingFromWire = (w: Wire.ApprovalPending): Link.ApprovalPending => ({
  _tag: "ApprovalPending",
  approvalId: w.approvalId,
  sessionId: w.sessionId,
  caller: w.caller,
  callerKind: KINDS.find((k) => k === w.callerKind) ?? "guest",
  ...(w.shareId === "" ? {} : { shareId: w.shareId }),
  ...(w.user === "" ? {} : { user: w.user }),
  mode: MODES.find((m) => m === w.mode) ?? "exec",
  command: w.command,
  rule: w.rule,
  createdAt: w.createdAt,
  expiresAt: w.expiresAt
})
