/**
 * A gRPC codec for a domain value: the generated protobuf encode/decode of its wire message composed with the
 * domain ↔ wire mapping of one of this package's codecs. The encoded bytes reach grpc-js without the generated
 * code's extra `Buffer.from` copy (`GrpcCodec.protobuf`), and the mappings share payload memory.
 */
import * as GrpcCodec from "@cmdop/grpc/GrpcCodec"

export const mapped = <W, A>(
  fns: GrpcCodec.MessageFns<W>,
  toWire: (value: A) => W,
  fromWire: (wire: W) => A
): GrpcCodec.Codec<A> => {
  const wire = GrpcCodec.protobuf(fns)
  return {
    serialize: (value) => wire.serialize(toWire(value)),
    deserialize: (bytes) => fromWire(wire.deserialize(bytes))
  }
}
