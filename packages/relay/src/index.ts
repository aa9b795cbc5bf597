/**
 * @cmdop/relay: the relay — its store, its transport-independent core, the gRPC and HTTP endpoints, and an
 * in-process `RelayClient` for embedding.
 */
export * as Authenticator from "./Authenticator.js"
export * as RelayClientInProcess from "./RelayClientInProcess.js"
export * as RelayCore from "./RelayCore.js"
export * as RelayGrpc from "./RelayGrpc.js"
export * as RelayServer from "./RelayServer.js"
export * as RelayStore from "./RelayStore.js"
