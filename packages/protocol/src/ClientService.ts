/**
 * `ClientService` (`client.proto`) as a grpc-js service definition whose messages are domain values (those of
 * `@cmdop/domain/RelayClient` and `ShareLink`), converted by this package's codecs. The relay serves it and
 * `RelayClientGrpc` dials it; neither sees a generated type. Payload bytes (stdin, output) are views, not copies.
 *
 * A streamed message the codecs cannot read (a kind from a newer peer) arrives as `Unreadable`; both ends skip it.
 * Every request is an object, even of one field: a server of grpc-js takes a falsy request (`""`, `undefined`)
 * for no request at all.
 */
import type { Machine } from "@cmdop/domain/Machine"
import type * as RelayClient from "@cmdop/domain/RelayClient"
import type { MintedShare, ShareLink, ShareListPage, SharePage } from "@cmdop/domain/ShareLink"
import * as GrpcCodec from "@cmdop/grpc/GrpcCodec"
import * as AttachCodec from "./AttachCodec.js"
import * as ExecCodec from "./ExecCodec.js"
import * as Wire from "./generated/cmdop/connect/v1/client.js"
import { MachineInfo } from "./generated/cmdop/connect/v1/common.js"
import { mapped, passingOn } from "./internal/wireCodec.js"
import * as MachineCodec from "./MachineCodec.js"
import * as ShareCodec from "./ShareCodec.js"
import { type Unreadable, unreadable } from "./Unreadable.js"

/** What a client sends on `exec`: the start first, then stdin (when it asked for it) up to `Eof`. */
export type ExecMessage =
  | { readonly _tag: "Start"; readonly request: RelayClient.ExecRequest; readonly stdin: boolean }
  | { readonly _tag: "Stdin"; readonly data: Uint8Array }
  | { readonly _tag: "Eof" }
  | { readonly _tag: "Signal"; readonly signal: string }
  | Unreadable

/** What a client sends on `attach`: the start first, then input and resizes. */
export type AttachMessage =
  { readonly _tag: "Start"; readonly request: RelayClient.AttachRequest } | RelayClient.AttachInput | Unreadable

/** `whoAmI` asks nothing. */
export type WhoAmIRequest = Record<string, never>

export interface ListMachinesRequest {
  readonly onlineOnly: boolean
}

export interface CreateShareRequest {
  readonly machine: string
  readonly ttlSeconds: number
  /** Set: the link reaches this one live interactive session only (pair debugging). */
  readonly sessionId?: string
}

export interface ResolveMachineRequest {
  readonly query: string
}

export interface RevokeShareRequest {
  readonly id: string
}

export interface ListSessionsRequest {
  readonly machine: string
}

export interface KillSessionRequest {
  readonly machine: string
  readonly sessionId: string
}

/** `killSession`'s answer; a working relay always names the machine. */
export interface Killed extends Omit<RelayClient.KilledSession, "machine"> {
  readonly machine?: Machine
}

/** `machine` narrows the list to one machine's links; `page` says which page (absent: the first, default size). */
export interface ListSharesRequest {
  readonly machine?: string
  readonly page?: ShareListPage
}

/** `listSessions`' answer; a working relay always names the machine. */
export interface Sessions {
  readonly machine?: Machine
  readonly sessions: ReadonlyArray<RelayClient.PtySession>
}

const toBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

const execMessageToWire = (m: ExecMessage): Wire.ExecRequest => {
  switch (m._tag) {
    case "Start":
      return { kind: { $case: "start", value: ExecCodec.startToWire(m.request, m.stdin) } }
    case "Stdin":
      return { kind: { $case: "stdin", value: toBuffer(m.data) } }
    case "Eof":
      return { kind: { $case: "eof", value: true } }
    case "Signal":
      return { kind: { $case: "signal", value: m.signal } }
    case "Unreadable":
      return { kind: undefined }
  }
}

const execMessageFromWire = (w: Wire.ExecRequest): ExecMessage => {
  const k = w.kind
  switch (k?.$case) {
    case "start":
      return { _tag: "Start", request: ExecCodec.startFromWire(k.value), stdin: k.value.stdin }
    case "stdin":
      return { _tag: "Stdin", data: k.value }
    case "eof":
      return { _tag: "Eof" }
    case "signal":
      return { _tag: "Signal", signal: k.value }
    default:
      return unreadable
  }
}

const attachMessageToWire = (m: AttachMessage): Wire.AttachRequest => {
  switch (m._tag) {
    case "Start":
      return AttachCodec.startToWire(m.request)
    case "Unreadable":
      return { kind: undefined }
    default:
      return AttachCodec.inputToWire(m)
  }
}

const attachMessageFromWire = (w: Wire.AttachRequest): AttachMessage =>
  w.kind?.$case === "start"
    ? { _tag: "Start", request: AttachCodec.startFromWire(w.kind.value) }
    : (AttachCodec.inputFromWire(w) ?? unreadable)

const principalToWire = (p: RelayClient.Principal): Wire.WhoAmIResponse => ({
  workspaceId: p.workspaceId,
  workspaceName: p.workspaceName,
  principalKind: p.kind,
  principal: p.principal,
  machineId: p.machineId ?? ""
})

/** A principal kind this client does not know reads as a key. */
const principalFromWire = (w: Wire.WhoAmIResponse): RelayClient.Principal => ({
  workspaceId: w.workspaceId,
  workspaceName: w.workspaceName,
  kind: w.principalKind === "user" ? "user" : w.principalKind === "guest" ? "guest" : "key",
  principal: w.principal,
  ...(w.machineId === "" ? {} : { machineId: w.machineId })
})

const machine = mapped(MachineInfo, MachineCodec.toWire, MachineCodec.fromWire)
const shareLink = mapped(
  Wire.ShareLink,
  (l: ShareLink) => ShareCodec.toWire(l),
  (w) => ShareCodec.fromWire(w)
)

// A relay node passes a forwarded call's answers on as the owning node encoded them (`PeerService`).
const execEvent = passingOn(
  mapped(
    Wire.ExecEvent,
    (e: RelayClient.ExecEvent | Unreadable) =>
      e._tag === "Unreadable" ? { kind: undefined } : ExecCodec.eventToWire(e),
    (w) => ExecCodec.eventFromWire(w) ?? unreadable
  )
)

const attachEvent = passingOn(
  mapped(
    Wire.AttachEvent,
    (e: RelayClient.AttachEvent | Unreadable) =>
      e._tag === "Unreadable" ? { kind: undefined } : AttachCodec.eventToWire(e),
    (w) => AttachCodec.eventFromWire(w) ?? unreadable
  )
)

const S = Wire.ClientServiceService

/** The service definition, for `GrpcServer.service` and `GrpcClient.make`. */
export const definition = {
  whoAmI: GrpcCodec.method(S.whoAmI, {
    request: mapped(
      Wire.WhoAmIRequest,
      (_: WhoAmIRequest) => ({}),
      (): WhoAmIRequest => ({})
    ),
    response: mapped(Wire.WhoAmIResponse, principalToWire, principalFromWire)
  }),
  listMachines: GrpcCodec.method(S.listMachines, {
    request: mapped(
      Wire.ListMachinesRequest,
      (r: ListMachinesRequest) => ({ onlineOnly: r.onlineOnly }),
      (w): ListMachinesRequest => ({ onlineOnly: w.onlineOnly })
    ),
    response: mapped(
      Wire.ListMachinesResponse,
      (l: RelayClient.MachineList) => ({ machines: l.machines.map(MachineCodec.toWire), now: l.now }),
      (w): RelayClient.MachineList => ({ machines: w.machines.map(MachineCodec.fromWire), now: w.now })
    )
  }),
  resolveMachine: GrpcCodec.method(S.resolveMachine, {
    request: mapped(
      Wire.ResolveMachineRequest,
      (r: ResolveMachineRequest) => ({ query: r.query }),
      (w): ResolveMachineRequest => ({ query: w.query })
    ),
    response: machine
  }),
  exec: GrpcCodec.method(S.exec, {
    request: mapped(Wire.ExecRequest, execMessageToWire, execMessageFromWire),
    response: execEvent
  }),
  createShare: GrpcCodec.method(S.createShare, {
    request: mapped(
      Wire.CreateShareRequest,
      (r: CreateShareRequest) => ({ machine: r.machine, ttlSeconds: r.ttlSeconds, sessionId: r.sessionId ?? "" }),
      (w): CreateShareRequest => ({
        machine: w.machine,
        ttlSeconds: w.ttlSeconds,
        ...(w.sessionId === "" ? {} : { sessionId: w.sessionId })
      })
    ),
    response: mapped(
      Wire.ShareLink,
      (m: MintedShare) => ShareCodec.toWire(m.link, { url: m.url, token: m.token }),
      (w): MintedShare => ({ link: ShareCodec.fromWire(w), url: w.url, token: w.token })
    )
  }),
  listShares: GrpcCodec.method(S.listShares, {
    request: mapped(
      Wire.ListSharesRequest,
      (r: ListSharesRequest) => ({
        machine: r.machine ?? "",
        limit: r.page?.limit ?? 0,
        after: r.page?.after ?? ""
      }),
      (w): ListSharesRequest => ({
        ...(w.machine === "" ? {} : { machine: w.machine }),
        ...(w.limit === 0 && w.after === ""
          ? {}
          : { page: { ...(w.limit === 0 ? {} : { limit: w.limit }), ...(w.after === "" ? {} : { after: w.after }) } })
      })
    ),
    response: mapped(
      Wire.ListSharesResponse,
      (page: SharePage) => ({ links: page.links.map((l) => ShareCodec.toWire(l)), next: page.next ?? "" }),
      (w): SharePage => ({
        links: w.links.map((l) => ShareCodec.fromWire(l)),
        ...(w.next === "" ? {} : { next: w.next })
      })
    )
  }),
  revokeShare: GrpcCodec.method(S.revokeShare, {
    request: mapped(
      Wire.RevokeShareRequest,
      (r: RevokeShareRequest) => ({ id: r.id }),
      (w): RevokeShareRequest => ({ id: w.id })
    ),
    response: shareLink
  }),
  attach: GrpcCodec.method(S.attach, {
    request: mapped(Wire.AttachRequest, attachMessageToWire, attachMessageFromWire),
    response: attachEvent
  }),
  listSessions: GrpcCodec.method(S.listSessions, {
    request: mapped(
      Wire.ListSessionsRequest,
      (r: ListSessionsRequest) => ({ machine: r.machine }),
      (w): ListSessionsRequest => ({ machine: w.machine })
    ),
    response: mapped(
      Wire.ListSessionsResponse,
      (s: Sessions) => ({
        machine: s.machine === undefined ? undefined : MachineCodec.toWire(s.machine),
        sessions: s.sessions.map(AttachCodec.sessionToWire)
      }),
      (w): Sessions => ({
        sessions: w.sessions.map(AttachCodec.sessionFromWire),
        ...(w.machine === undefined ? {} : { machine: MachineCodec.fromWire(w.machine) })
      })
    )
  }),
  killSession: GrpcCodec.method(S.killSession, {
    request: mapped(
      Wire.KillSessionRequest,
      (r: KillSessionRequest) => ({ machine: r.machine, sessionId: r.sessionId }),
      (w): KillSessionRequest => ({ machine: w.machine, sessionId: w.sessionId })
    ),
    response: mapped(
      Wire.KillSessionResponse,
      (k: Killed) => ({
        machine: k.machine === undefined ? undefined : MachineCodec.toWire(k.machine),
        sessionId: k.sessionId,
        ended: k.ended,
        exitCode: k.exitCode,
        signal: k.signal ?? "",
        reason: k.reason
      }),
      (w): Killed => ({
        sessionId: w.sessionId,
        ended: w.ended,
        exitCode: w.exitCode,
        reason: w.reason,
        ...(w.signal === "" ? {} : { signal: w.signal }),
        ...(w.machine === undefined ? {} : { machine: MachineCodec.fromWire(w.machine) })
      })
    )
  })
} as const
