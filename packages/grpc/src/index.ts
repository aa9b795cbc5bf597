/**
 * `@cmdop/grpc`: grpc-js wrapped in Effect once, so the rest of the code base never sees its callbacks.
 */
export * as GrpcClient from "./GrpcClient.js"
export * as GrpcCodec from "./GrpcCodec.js"
export * as GrpcMethod from "./GrpcMethod.js"
export * as GrpcServer from "./GrpcServer.js"
export * as GrpcStatusError from "./GrpcStatusError.js"
