/**
 * A gRPC codec for a domain value: the generated protobuf encode/decode of its wire message composed with the
 * domain ↔ wire mapping of one of this package's codecs. The encoded bytes reach grpc-js without the generated
 * code's extra `Buffer.from` copy (`GrpcCodec.protobuf`), and the mappings share payload memory. The messages that
 * carry bulk output are encoded by `fastWire.ts` (the payload copied once).
 */
import * as GrpcCodec from "@cmdop/grpc/GrpcCodec"
import * as GrpcFrameRoom from "@cmdop/grpc/GrpcFrameRoom"
import * as Agent from "../generated/cmdop/connect/v1/agent.js"
import * as Client from "../generated/cmdop/connect/v1/client.js"
import * as FastWire from "./fastWire.js"

/** Domain values' payload bytes, for the encoders that pass received payloads on in place. */
const payloadOf = (value: unknown): Uint8Array | undefined => {
  const v = value as { readonly _tag?: string; readonly data?: unknown }
  return (v._tag === "Stdout" || v._tag === "Stderr" || v._tag === "SessionOutput") && v.data instanceof Uint8Array
    ? v.data
    : undefined
}

const fastEncoders = new Map<unknown, (wire: any, data: Uint8Array | undefined) => Buffer | undefined>([
  [Agent.AgentMessage, FastWire.agentMessage],
  [Client.ExecEvent, FastWire.execEvent]
])

const fastDecoders = new Map<unknown, (bytes: Uint8Array) => any>([
  [Agent.AgentMessage, FastWire.decodeAgentMessage],
  [Client.ExecEvent, FastWire.decodeExecEvent]
])

const afterDecode = new Map<unknown, (bytes: Uint8Array, wire: any, data: Uint8Array | undefined) => void>([
  [Agent.AgentMessage, FastWire.markReceivedOutput]
])

export const mapped = <W, A>(
  fns: GrpcCodec.MessageFns<W>,
  toWire: (value: A) => W,
  fromWire: (wire: W) => A
): GrpcCodec.Codec<A> => {
  const wire = GrpcCodec.protobuf(fns)
  const fast = fastEncoders.get(fns)
  const after = afterDecode.get(fns)
  const fastDecode = fastDecoders.get(fns)
  const decode =
    fastDecode === undefined ? wire.deserialize : (bytes: Buffer) => fastDecode(bytes) ?? wire.deserialize(bytes)
  return {
    serialize:
      fast === undefined
        ? (value) => wire.serialize(toWire(value))
        : (value) => {
            const w = toWire(value)
            return fast(w, payloadOf(value)) ?? wire.serialize(w)
          },
    deserialize:
      after === undefined
        ? (bytes) => fromWire(decode(bytes))
        : (bytes) => {
            const w = decode(bytes)
            const value = fromWire(w)
            after(bytes, w, payloadOf(value))
            return value
          }
  }
}

/**
 * Messages a relay node passes on as it received them (a forwarded call's answers, from the owning node to the
 * client): the decoded value → the bytes it was decoded from. A WeakMap, so a copy or a spread of the value never
 * carries stale bytes, and the bytes go with the value.
 */
const receivedBytes = new WeakMap<object, Buffer>()

/** `codec`, whose decoded values remember the bytes they came from (for `passingOn` to send them again). */
export const keepingBytes = <A>(codec: GrpcCodec.Codec<A>): GrpcCodec.Codec<A> => ({
  serialize: codec.serialize,
  deserialize: (bytes) => {
    const value = codec.deserialize(bytes)
    // Not the shared `unreadable`: a message this node cannot read is dropped, never passed on.
    if (typeof value === "object" && value !== null && (value as { readonly _tag?: unknown })._tag !== "Unreadable")
      receivedBytes.set(value, bytes)
    return value
  }
})

/**
 * `codec`, which sends a value decoded by `keepingBytes` as the bytes it came from (the same wire message: neither
 * re-encoded nor copied), and encodes any other value.
 */
export const passingOn = <A>(codec: GrpcCodec.Codec<A>): GrpcCodec.Codec<A> => ({
  serialize: (value) => {
    const kept = typeof value === "object" && value !== null ? receivedBytes.get(value) : undefined
    if (kept === undefined) return codec.serialize(value)
    // The bytes still follow the gRPC frame header they arrived behind (grpc-js hands a message on as a view of its
    // framed buffer): grpc-js writes the new header, the same five bytes, there instead of copying the message.
    GrpcFrameRoom.markRoom(kept)
    return kept
  },
  deserialize: codec.deserialize
})
