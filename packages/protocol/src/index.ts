/**
 * @cmdop/protocol: the wire contract generated from `proto/`, the codecs between it and the domain, the gRPC
 * service definitions in domain terms (`AgentService`, `ClientService`), plus the gRPC `RelayClient`.
 */
export * as AgentLinkCodec from "./AgentLinkCodec.js"
export * as AgentService from "./AgentService.js"
export * as ClientService from "./ClientService.js"
export * as ErrorCodec from "./ErrorCodec.js"
export * as ExecCodec from "./ExecCodec.js"
export * as MachineCodec from "./MachineCodec.js"
export * as RelayClientGrpc from "./RelayClientGrpc.js"
export * as AttachCodec from "./AttachCodec.js"
export * as ShareCodec from "./ShareCodec.js"
export * as Unreadable from "./Unreadable.js"
export * as PeerService from "./PeerService.js"
