/**
 * @cmdop/protocol: the wire contract generated from `proto/` and the codecs between it and the domain, plus the
 * gRPC `RelayClient`.
 */
export * as AgentLinkCodec from "./AgentLinkCodec.js"
export * as ErrorCodec from "./ErrorCodec.js"
export * as ExecCodec from "./ExecCodec.js"
export * as MachineCodec from "./MachineCodec.js"
export * as RelayClientGrpc from "./RelayClientGrpc.js"
export * as AttachCodec from "./AttachCodec.js"
export * as ShareCodec from "./ShareCodec.js"
