/**
 * `PeerService` (`peer.proto`) as a grpc-js service definition in domain terms: the internal service relay nodes
 * of one cluster call on each other's peer port to forward a client's exec, attach and session listing to the
 * node that holds the machine's agent stream. Each call starts with the caller as the forwarding node
 * authenticated it (`ForwardedCaller`); the rest of the call, and every answer, are the client messages of
 * `client.proto`, read and written by the same codecs as `ClientService`, with payload bytes as views (no copy).
 *
 * The cluster secret travels in call metadata (`CLUSTER_SECRET_HEADER`), checked by the serving node.
 */
import * as ApprovalService from "./ApprovalService.js"
import type * as RelayClient from "@cmdop/domain/RelayClient"
import * as GrpcCodec from "@cmdop/grpc/GrpcCodec"
import * as Redacted from "effect/Redacted"
import * as AttachCodec from "./AttachCodec.js"
import * as ClientService from "./ClientService.js"
import * as ExecCodec from "./ExecCodec.js"
import * as Wire from "./generated/cmdop/connect/v1/peer.js"
import { keepingBytes, mapped } from "./internal/wireCodec.js"
import { type Unreadable, unreadable } from "./Unreadable.js"

/** The metadata key carrying the cluster secret on every peer call. */
export const CLUSTER_SECRET_HEADER = "x-cmdop-cluster-secret"

/** Who a forwarded call is for, already authenticated by the node that received it. */
export interface ForwardedCaller extends RelayClient.Principal {
  /** The caller's own credential: the owning node re-checks a guest's while its sessions live. */
  readonly credential: Redacted.Redacted<string>
  readonly shareId?: string
  readonly machineHostname?: string
  readonly expiresAt?: number
  readonly sessionId?: string
  readonly role?: "owner" | "member" | "viewer"
  readonly userId?: string
}

/** The start of every forwarded call: its caller, and the node that forwarded it. */
export interface Origin {
  readonly caller: ForwardedCaller
  readonly fromNode: string
}

/**
 * The forwarding node's client went away: the owning node ends the call as a reset would, and answers CANCELLED.
 * Sent (then the half-close) instead of resetting the call's HTTP/2 stream: every forwarded call between two nodes
 * shares one connection, which Node's HTTP/2 server closes after 1,000 resets in a burst (`peer.proto`).
 */
export interface Cancel {
  readonly _tag: "Cancel"
}

/** The one `Cancel`. */
export const cancel: Cancel = { _tag: "Cancel" }

/** What a forwarding node sends on `exec`: the start first, then stdin, its end, or signals; `Cancel` last. */
export type ExecMessage =
  | ({ readonly _tag: "Start"; readonly request: RelayClient.ExecRequest; readonly stdin: boolean } & Origin)
  | { readonly _tag: "Stdin"; readonly data: Uint8Array }
  | { readonly _tag: "Eof" }
  | { readonly _tag: "Signal"; readonly signal: string }
  | Cancel
  | Unreadable

/** What a forwarding node sends on `attach`: the start first, then input and resizes; `Cancel` last. */
export type AttachMessage =
  | ({ readonly _tag: "Start"; readonly request: RelayClient.AttachRequest } & Origin)
  | RelayClient.AttachInput
  | Cancel
  | Unreadable

export interface ListSessionsRequest extends Origin {
  readonly _tag: "ListSessions"
  readonly machine: string
}

export interface ListApprovalsRequest extends Origin {
  readonly _tag: "ListApprovals"
}

export interface AnswerApprovalRequest extends Origin {
  readonly _tag: "AnswerApproval"
  readonly answer: ApprovalService.ApprovalAnswer
}

export interface KillSessionRequest extends Origin {
  readonly _tag: "KillSession"
  readonly machine: string
  readonly sessionId: string
}

const toBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

const roles = ["owner", "member", "viewer"] as const
const kinds = ["key", "user", "guest"] as const

export const callerToWire = (c: ForwardedCaller, fromNode: string): Wire.PeerCaller => ({
  workspaceId: c.workspaceId,
  workspaceName: c.workspaceName,
  kind: c.kind,
  principal: c.principal,
  machineId: c.machineId ?? "",
  credential: Redacted.value(c.credential),
  shareId: c.shareId ?? "",
  machineHostname: c.machineHostname ?? "",
  expiresAt: c.expiresAt ?? 0,
  sessionId: c.sessionId ?? "",
  role: c.role ?? "",
  userId: c.userId ?? "",
  fromNode
})

/** `undefined` when the caller cannot be read (a kind or role this node does not know): the call is refused. */
export const callerFromWire = (w: Wire.PeerCaller | undefined): Origin | undefined => {
  if (w === undefined) return undefined
  const kind = kinds.find((k) => k === w.kind)
  const role = w.role === "" ? undefined : roles.find((r) => r === w.role)
  if (kind === undefined || (w.role !== "" && role === undefined) || w.credential === "") return undefined
  const caller: ForwardedCaller = {
    workspaceId: w.workspaceId,
    workspaceName: w.workspaceName,
    kind,
    principal: w.principal,
    credential: Redacted.make(w.credential),
    ...(w.machineId === "" ? {} : { machineId: w.machineId }),
    ...(w.shareId === "" ? {} : { shareId: w.shareId }),
    ...(w.machineHostname === "" ? {} : { machineHostname: w.machineHostname }),
    ...(w.expiresAt === 0 ? {} : { expiresAt: w.expiresAt }),
    ...(w.sessionId === "" ? {} : { sessionId: w.sessionId }),
    ...(role === undefined ? {} : { role }),
    ...(w.userId === "" ? {} : { userId: w.userId })
  }
  return { caller, fromNode: w.fromNode }
}

const execMessageToWire = (m: ExecMessage): Wire.PeerExecRequest => {
  switch (m._tag) {
    case "Start":
      return {
        kind: {
          $case: "start",
          value: { caller: callerToWire(m.caller, m.fromNode), start: ExecCodec.startToWire(m.request, m.stdin) }
        }
      }
    case "Stdin":
      return { kind: { $case: "stdin", value: toBuffer(m.data) } }
    case "Eof":
      return { kind: { $case: "eof", value: true } }
    case "Signal":
      return { kind: { $case: "signal", value: m.signal } }
    case "Cancel":
      return { kind: { $case: "cancel", value: true } }
    case "Unreadable":
      return { kind: undefined }
  }
}

const execMessageFromWire = (w: Wire.PeerExecRequest): ExecMessage => {
  const k = w.kind
  switch (k?.$case) {
    case "start": {
      const origin = callerFromWire(k.value.caller)
      const start = k.value.start
      if (origin === undefined || start === undefined) return unreadable
      return { _tag: "Start", ...origin, request: ExecCodec.startFromWire(start), stdin: start.stdin }
    }
    case "stdin":
      return { _tag: "Stdin", data: k.value }
    case "eof":
      return { _tag: "Eof" }
    case "signal":
      return { _tag: "Signal", signal: k.value }
    case "cancel":
      return cancel
    default:
      return unreadable
  }
}

const attachMessageToWire = (m: AttachMessage): Wire.PeerAttachRequest => {
  switch (m._tag) {
    case "Start": {
      const start = AttachCodec.startToWire(m.request).kind
      return {
        kind: {
          $case: "start",
          value: {
            caller: callerToWire(m.caller, m.fromNode),
            start: start?.$case === "start" ? start.value : undefined
          }
        }
      }
    }
    case "Cancel":
      return { kind: { $case: "cancel", value: true } }
    case "Unreadable":
      return { kind: undefined }
    default: {
      // The input kinds have the same numbers and types as in the client's AttachRequest.
      const input = AttachCodec.inputToWire(m).kind
      return { kind: input?.$case === "start" ? undefined : input }
    }
  }
}

const attachMessageFromWire = (w: Wire.PeerAttachRequest): AttachMessage => {
  const k = w.kind
  if (k?.$case === "start") {
    const origin = callerFromWire(k.value.caller)
    if (origin === undefined || k.value.start === undefined) return unreadable
    return { _tag: "Start", ...origin, request: AttachCodec.startFromWire(k.value.start) }
  }
  if (k?.$case === "cancel") return cancel
  return (k === undefined ? undefined : AttachCodec.inputFromWire({ kind: k })) ?? unreadable
}

const S = Wire.PeerServiceService
const C = ClientService.definition
const A = ApprovalService.definition

/** The service definition, for `GrpcServer.service` and `GrpcClient.make`. */
export const definition = {
  exec: GrpcCodec.method(S.exec, {
    request: mapped(Wire.PeerExecRequest, execMessageToWire, execMessageFromWire),
    // Answers keep their bytes: the forwarding node passes them on to its client as they came (`ClientService`).
    response: keepingBytes({ serialize: C.exec.responseSerialize, deserialize: C.exec.responseDeserialize })
  }),
  attach: GrpcCodec.method(S.attach, {
    request: mapped(Wire.PeerAttachRequest, attachMessageToWire, attachMessageFromWire),
    response: keepingBytes({ serialize: C.attach.responseSerialize, deserialize: C.attach.responseDeserialize })
  }),
  listSessions: GrpcCodec.method(S.listSessions, {
    request: mapped(
      Wire.PeerListSessionsRequest,
      (r: ListSessionsRequest | Unreadable): Wire.PeerListSessionsRequest =>
        r._tag === "Unreadable"
          ? { caller: undefined, machine: "" }
          : { caller: callerToWire(r.caller, r.fromNode), machine: r.machine },
      (w): ListSessionsRequest | Unreadable => {
        const origin = callerFromWire(w.caller)
        return origin === undefined ? unreadable : { _tag: "ListSessions", ...origin, machine: w.machine }
      }
    ),
    response: { serialize: C.listSessions.responseSerialize, deserialize: C.listSessions.responseDeserialize }
  }),
  killSession: GrpcCodec.method(S.killSession, {
    request: mapped(
      Wire.PeerKillSessionRequest,
      (r: KillSessionRequest | Unreadable): Wire.PeerKillSessionRequest =>
        r._tag === "Unreadable"
          ? { caller: undefined, machine: "", sessionId: "" }
          : { caller: callerToWire(r.caller, r.fromNode), machine: r.machine, sessionId: r.sessionId },
      (w): KillSessionRequest | Unreadable => {
        const origin = callerFromWire(w.caller)
        return origin === undefined
          ? unreadable
          : { _tag: "KillSession", ...origin, machine: w.machine, sessionId: w.sessionId }
      }
    ),
    response: { serialize: C.killSession.responseSerialize, deserialize: C.killSession.responseDeserialize }
  }),
  listApprovals: GrpcCodec.method(S.listApprovals, {
    request: mapped(
      Wire.PeerListApprovalsRequest,
      (r: ListApprovalsRequest | Unreadable): Wire.PeerListApprovalsRequest => ({
        caller: r._tag === "Unreadable" ? undefined : callerToWire(r.caller, r.fromNode)
      }),
      (w): ListApprovalsRequest | Unreadable => {
        const origin = callerFromWire(w.caller)
        return origin === undefined ? unreadable : { _tag: "ListApprovals", ...origin }
      }
    ),
    response: { serialize: A.listApprovals.responseSerialize, deserialize: A.listApprovals.responseDeserialize }
  }),
  answerApproval: GrpcCodec.method(S.answerApproval, {
    request: mapped(
      Wire.PeerAnswerApprovalRequest,
      (r: AnswerApprovalRequest | Unreadable): Wire.PeerAnswerApprovalRequest =>
        r._tag === "Unreadable"
          ? { caller: undefined, answer: undefined }
          : { caller: callerToWire(r.caller, r.fromNode), answer: { ...r.answer } },
      (w): AnswerApprovalRequest | Unreadable => {
        const origin = callerFromWire(w.caller)
        return origin === undefined || w.answer === undefined
          ? unreadable
          : {
              _tag: "AnswerApproval",
              ...origin,
              answer: { approvalId: w.answer.approvalId, approve: w.answer.approve, forLink: w.answer.forLink }
            }
      }
    ),
    response: { serialize: A.answerApproval.responseSerialize, deserialize: A.answerApproval.responseDeserialize }
  }),
  /** A node that revoked a share link asks the node holding its machine to end its guests' sessions, and the count. */
  endGuestSessions: S.endGuestSessions
} as const
