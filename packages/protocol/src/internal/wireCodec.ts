/**
 * A gRPC codec for a domain value: the generated protobuf encode/decode of its wire message composed with the
 * domain ↔ wire mapping of one of this package's codecs. The encoded bytes reach grpc-js without the generated
 * code's extra `Buffer.from` copy (`GrpcCodec.protobuf`), and the mappings share payload memory. The messages that
 * carry bulk output are encoded by `fastWire.ts` (the payload copied once).
 */
import * as GrpcCodec from "@cmdop/grpc/GrpcCodec"
import * as Agent from "../generated/cmdop/connect/v1/agent.js"
import * as Client from "../generated/cmdop/connect/v1/client.js"
import * as FastWire from "./fastWire.js"

const fastEncoders = new Map<unknown, (wire: any) => Buffer | undefined>([
  [Agent.AgentMessage, FastWire.agentMessage],
  [Client.ExecEvent, FastWire.execEvent]
])

export const mapped = <W, A>(
  fns: GrpcCodec.MessageFns<W>,
  toWire: (value: A) => W,
  fromWire: (wire: W) => A
): GrpcCodec.Codec<A> => {
  const wire = GrpcCodec.protobuf(fns)
  const fast = fastEncoders.get(fns)
  return {
    serialize:
      fast === undefined
        ? (value) => wire.serialize(toWire(value))
        : (value) => {
            const w = toWire(value)
            return fast(w) ?? wire.serialize(w)
          },
    deserialize: (bytes) => fromWire(wire.deserialize(bytes))
  }
}
