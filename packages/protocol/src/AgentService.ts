/**
 * `AgentService` (`agent.proto`) as a grpc-js service definition whose messages are domain values: `connect`
 * carries `AgentLink.AgentMessage` up and `AgentLink.RelayMessage` down, `register` a `MachineIdentity` and the
 * registered `Machine`. The relay serves it and the agent dials it; neither sees a generated type.
 *
 * A message the `AgentLinkCodec` cannot read arrives as `Unreadable` (both ends skip it), except a `SessionOpen`
 * whose spec is neither exec nor pty: it arrives as `UnknownOpen`, naming the session so the agent can refuse it.
 */
import type * as Link from "@cmdop/domain/AgentLink"
import type { Machine } from "@cmdop/domain/Machine"
import * as GrpcCodec from "@cmdop/grpc/GrpcCodec"
import * as AgentLinkCodec from "./AgentLinkCodec.js"
import * as Wire from "./generated/cmdop/connect/v1/agent.js"
import { mapped } from "./internal/wireCodec.js"
import * as MachineCodec from "./MachineCodec.js"
import { type Unreadable, unreadable } from "./Unreadable.js"

/** A `SessionOpen` for a session kind this agent does not know (a newer relay's). */
export interface UnknownOpen {
  readonly _tag: "UnknownOpen"
  readonly sessionId: string
}

/** What the agent sends on `connect`. */
export type AgentMessage = Link.AgentMessage | Unreadable

/** What the relay sends on `connect`. */
export type RelayMessage = Link.RelayMessage | Unreadable | UnknownOpen

/** `register`'s request; an agent that sends no identity gets a protocol error from the relay. */
export interface RegisterRequest {
  readonly identity?: Link.MachineIdentity
}

/** `register`'s answer: the machine as the relay registered it (always named by a working relay). */
export interface RegisterResponse {
  readonly machine?: Machine
  readonly workspaceName: string
}

const agentMessageFromWire = (w: Wire.AgentMessage): AgentMessage =>
  AgentLinkCodec.agentMessageFromWire(w) ?? unreadable

const agentMessageToWire = (m: AgentMessage): Wire.AgentMessage =>
  m._tag === "Unreadable" ? { kind: undefined } : AgentLinkCodec.agentMessageToWire(m)

const relayMessageFromWire = (w: Wire.RelayMessage): RelayMessage => {
  const message = AgentLinkCodec.relayMessageFromWire(w)
  if (message !== undefined) return message
  return w.kind?.$case === "open" && w.kind.value.sessionId !== ""
    ? { _tag: "UnknownOpen", sessionId: w.kind.value.sessionId }
    : unreadable
}

const relayMessageToWire = (m: RelayMessage): Wire.RelayMessage => {
  switch (m._tag) {
    case "Unreadable":
      return { kind: undefined }
    case "UnknownOpen":
      return { kind: { $case: "open", value: { sessionId: m.sessionId, kind: undefined, caller: undefined } } }
    default:
      return AgentLinkCodec.relayMessageToWire(m)
  }
}

const registerRequest = mapped(
  Wire.RegisterRequest,
  (r: RegisterRequest): Wire.RegisterRequest => ({
    identity: r.identity === undefined ? undefined : AgentLinkCodec.identityToWire(r.identity)
  }),
  (w): RegisterRequest => (w.identity === undefined ? {} : { identity: AgentLinkCodec.identityFromWire(w.identity) })
)

const registerResponse = mapped(
  Wire.RegisterResponse,
  (r: RegisterResponse): Wire.RegisterResponse => ({
    machine: r.machine === undefined ? undefined : MachineCodec.toWire(r.machine),
    workspaceName: r.workspaceName
  }),
  (w): RegisterResponse => ({
    workspaceName: w.workspaceName,
    ...(w.machine === undefined ? {} : { machine: MachineCodec.fromWire(w.machine) })
  })
)

/** The service definition, for `GrpcServer.service` and `GrpcClient.make`. */
export const definition = {
  register: GrpcCodec.method(Wire.AgentServiceService.register, {
    request: registerRequest,
    response: registerResponse
  }),
  connect: GrpcCodec.method(Wire.AgentServiceService.connect, {
    request: mapped(Wire.AgentMessage, agentMessageToWire, agentMessageFromWire),
    response: mapped(Wire.RelayMessage, relayMessageToWire, relayMessageFromWire)
  })
} as const
