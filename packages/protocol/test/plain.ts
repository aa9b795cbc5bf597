/**
 * Test helper: a value made comparable with `assert.deepStrictEqual`: a `Redacted` shows what it hides, bytes
 * compare by content (a `Buffer` and a `Uint8Array` with the same bytes are equal), and an optional field set to
 * `undefined` is the same as one left out.
 */
import * as Redacted from "effect/Redacted"

export const plain = (v: unknown): unknown => {
  if (Redacted.isRedacted(v)) return { redacted: plain(Redacted.value(v)) }
  if (v instanceof Uint8Array) return { bytes: Array.from(v) }
  if (Array.isArray(v)) return v.map(plain)
  if (v !== null && typeof v === "object")
    return Object.fromEntries(Object.entries(v).flatMap(([k, x]) => (x === undefined ? [] : [[k, plain(x)]])))
  return v
}

/** A wire message through protobuf bytes and back, as the other side of a call sees it. */
export const viaBytes =
  <T>(fns: {
    readonly encode: (message: T) => { finish: () => Uint8Array }
    readonly decode: (input: Uint8Array) => T
  }) =>
  (message: T): T =>
    fns.decode(fns.encode(message).finish())

/** A request through a gRPC method definition's serializer and deserializer, as the serving end reads it. */
export const viaRequest =
  <A>(method: { readonly requestSerialize: (a: A) => Buffer; readonly requestDeserialize: (b: Buffer) => A }) =>
  (message: A): A =>
    method.requestDeserialize(method.requestSerialize(message))

/** A response through a gRPC method definition's serializer and deserializer, as the calling end reads it. */
export const viaResponse =
  <A>(method: { readonly responseSerialize: (a: A) => Buffer; readonly responseDeserialize: (b: Buffer) => A }) =>
  (message: A): A =>
    method.responseDeserialize(method.responseSerialize(message))
