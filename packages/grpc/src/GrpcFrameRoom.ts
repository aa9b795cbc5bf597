/**
 * Serialized messages that have room for gRPC's 5-byte frame header right in front of them: bytes of the same
 * ArrayBuffer that nothing reads any more. grpc-js (as patched in `patches/@grpc__grpc-js@1.14.7.patch`) writes the
 * header there and sends the message as it is; without the mark it copies every message into a new buffer of its
 * own, 5 bytes longer. For bulk output that copy, and the large short-lived buffer, came on every hop.
 *
 * The set lives under a global symbol, so the patched grpc-js finds it without importing this package. A mark is
 * used once: grpc-js takes it off when it frames the message.
 */

/** gRPC's length prefix: a compression flag byte and a 4-byte big-endian length. */
export const HEADER_BYTES = 5

const key = Symbol.for("@grpc/grpc-js.frameRoom")
const global = globalThis as { [key]?: WeakSet<Uint8Array> }
const marked: WeakSet<Uint8Array> = (global[key] ??= new WeakSet())

/**
 * Marks `message` (a serializer's result) as having `HEADER_BYTES` free bytes in front of it that grpc-js may
 * overwrite. The caller vouches that nothing reads those bytes.
 */
export const markRoom = (message: Uint8Array): void => {
  if (message.byteOffset >= HEADER_BYTES) marked.add(message)
}

/** Whether grpc-js will frame `message` in place (for tests). */
export const hasRoom = (message: Uint8Array): boolean => marked.has(message)
