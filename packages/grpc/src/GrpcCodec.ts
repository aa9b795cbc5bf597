/**
 * How a method's messages become bytes and back, chosen per method and per direction: grpc-js takes a
 * serializer and a deserializer for each. The bytes on the wire stay the same protobuf; only what a handler or a
 * caller holds changes. For hot paths:
 *
 * - `raw`: the message as the Buffer grpc-js received, no decode at all (a relay forwarding what it does not read);
 * - `view(spec)`: only the declared fields are decoded, `bytes` fields as views into the received Buffer (no copy);
 * - `protobuf(fns)`: a ts-proto message, without the extra copy of the generated `Buffer.from(….finish())`.
 *
 * ```ts
 * const Agent = { ...AgentServiceService, connect: GrpcCodec.method(AgentServiceService.connect, { request: GrpcCodec.raw }) }
 * ```
 */
import type * as GrpcMethod from "./GrpcMethod.js"
import * as protoView from "./internal/protoView.js"

/** Serializer and deserializer of one message type. */
export interface Codec<A> {
  readonly serialize: (value: A) => Buffer
  readonly deserialize: (bytes: Buffer) => A
}

const identity = (bytes: Buffer): Buffer => bytes

/** The message's bytes as they are: sent as given, received as grpc-js hands them over (no copy either way). */
export const raw: Codec<Buffer> = { serialize: identity, deserialize: identity }

/** The encode/decode pair ts-proto generates for a message (`encode` takes the writer to write into). */
export interface MessageFns<A> {
  readonly encode: (message: A, writer?: any) => { finish(): Uint8Array }
  readonly decode: (input: Uint8Array) => A
}

/** A writer whose buffer grew past this is not kept for the next message (its memory would stay with the codec). */
const KEEP_WRITER_UP_TO = 1024 * 1024

/**
 * A ts-proto message; the encoded bytes are handed to grpc-js as a view, not copied once more. One writer is reused
 * from message to message (encoding is synchronous), so its buffer does not grow from empty, zero-filled, each time.
 */
export const protobuf = <A>(fns: MessageFns<A>): Codec<A> => {
  let writer: { finish(): Uint8Array } | undefined
  return {
    serialize: (value) => {
      const w = writer
      writer = undefined
      // Should `encode` throw half-way, the writer is dropped with its state.
      const next = fns.encode(value, w)
      const bytes = next.finish()
      if (bytes.byteLength <= KEEP_WRITER_UP_TO) writer = next
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    },
    deserialize: (bytes) => fns.decode(bytes)
  }
}

export type FieldKind = protoView.FieldKind
export type Spec = protoView.Spec
export type View<S extends Spec> = protoView.View<S>

/**
 * Decodes only the fields of `spec` (name → [field number, kind]); `bytes` fields are views sharing the received
 * Buffer, so a payload is never copied on the way in. A view keeps the whole received message alive while it is
 * held. Encoding copies each `bytes` field once, into the message. `uint64` values are exact below 2^53.
 */
export const view = <const S extends Spec>(spec: S): Codec<View<S>> => ({
  serialize: (value) => protoView.encode(spec, value),
  deserialize: (bytes) => protoView.decode(spec, bytes)
})

type WithCodecs<M, Req, Res> = Omit<
  M,
  "requestSerialize" | "requestDeserialize" | "responseSerialize" | "responseDeserialize"
> & {
  readonly requestSerialize: (value: Req) => Buffer
  readonly requestDeserialize: (bytes: Buffer) => Req
  readonly responseSerialize: (value: Res) => Buffer
  readonly responseDeserialize: (bytes: Buffer) => Res
}

/**
 * `definition` with its requests and/or responses carried by other codecs; the streaming shape and path stay. Both
 * ends of a call may choose differently: the bytes on the wire do not change.
 */
export const method = <
  M extends {
    readonly requestSerialize: (value: any) => Buffer
    readonly requestDeserialize: (bytes: Buffer) => any
    readonly responseSerialize: (value: any) => Buffer
    readonly responseDeserialize: (bytes: Buffer) => any
  },
  Req = GrpcMethod.RequestOf<M>,
  Res = GrpcMethod.ResponseOf<M>
>(
  definition: M,
  codecs: { readonly request?: Codec<Req>; readonly response?: Codec<Res> }
): WithCodecs<M, Req, Res> => ({
  ...definition,
  ...(codecs.request === undefined
    ? {}
    : { requestSerialize: codecs.request.serialize, requestDeserialize: codecs.request.deserialize }),
  ...(codecs.response === undefined
    ? {}
    : { responseSerialize: codecs.response.serialize, responseDeserialize: codecs.response.deserialize })
})
