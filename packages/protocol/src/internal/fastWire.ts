/**
 * Encoders for the messages that carry bulk output, writing the same protobuf bytes as the generated code into one
 * buffer of the exact size: the payload is copied once. (The generated encoder grows its buffer by doubling,
 * shifts the payload when a nested message's length needs more than one byte, then copies it all out again.)
 * Each answers `undefined` for a message it does not cover; the generated encoder then does the work.
 */
import type * as Agent from "../generated/cmdop/connect/v1/agent.js"
import type * as Client from "../generated/cmdop/connect/v1/client.js"
import * as GrpcFrameRoom from "@cmdop/grpc/GrpcFrameRoom"
import * as OutputHeadroom from "../OutputHeadroom.js"

const varintSize = (n: number): number => {
  let size = 1
  while (n >= 128) {
    n = Math.floor(n / 128)
    size++
  }
  return size
}

/** Writes `n` (a non-negative integer below 2^53) as a varint at `pos`; answers the position after it. */
const writeVarint = (buf: Buffer, pos: number, n: number): number => {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 128
    n = Math.floor(n / 128)
  }
  buf[pos++] = n
  return pos
}

/**
 * `AgentMessage { output: SessionOutput }` (field 3), for output with a payload. Written in place, in front of the
 * payload, when it sits in a buffer from `OutputHeadroom.allocate` (and nothing follows it: offset 0).
 */
export const agentMessage = (message: Agent.AgentMessage): Buffer | undefined => {
  if (message.kind?.$case !== "output") return undefined
  const { sessionId, pipe, data, offset } = message.kind.value
  if (pipe < 0 || offset < 0 || !Number.isSafeInteger(offset)) return undefined
  const idBytes = Buffer.byteLength(sessionId, "utf8")
  const inner =
    (idBytes > 0 ? 1 + varintSize(idBytes) + idBytes : 0) +
    (pipe !== 0 ? 1 + varintSize(pipe) : 0) +
    (data.length > 0 ? 1 + varintSize(data.length) + data.length : 0) +
    (offset !== 0 ? 1 + varintSize(offset) : 0)
  const total = 1 + varintSize(inner) + inner
  const header = total - data.length
  // In place, the room also takes grpc-js's frame header in front of the message (`GrpcFrameRoom`).
  const inPlace = offset === 0 && data.length > 0 && OutputHeadroom.claim(data, header + GrpcFrameRoom.HEADER_BYTES)
  const buf = inPlace ? Buffer.from(data.buffer, data.byteOffset - header, total) : Buffer.allocUnsafe(total)
  if (inPlace) GrpcFrameRoom.markRoom(buf)
  buf[0] = 26
  let pos = writeVarint(buf, 1, inner)
  if (idBytes > 0) {
    buf[pos++] = 10
    pos = writeVarint(buf, pos, idBytes)
    pos += buf.write(sessionId, pos, idBytes, "utf8")
  }
  if (pipe !== 0) {
    buf[pos++] = 16
    pos = writeVarint(buf, pos, pipe)
  }
  if (data.length > 0) {
    buf[pos++] = 26
    pos = writeVarint(buf, pos, data.length)
    if (!inPlace) buf.set(data, pos)
    pos += data.length
  }
  if (offset !== 0) {
    buf[pos++] = 32
    writeVarint(buf, pos, offset)
  }
  return buf
}

/**
 * Payloads of agent output that sit in the bytes they were received in right after their own length-delimited
 * header (`SessionOutput.data`, field 3, the message's last field): the header has the shape of an `ExecEvent`
 * output field, so the relay can pass such a payload on by rewriting one tag byte in place, without a copy.
 * Marked only when decoded from received bytes; used (and forgotten) once.
 */
const prefixed = new WeakSet<Uint8Array>()

/** Those of them with room for grpc-js's frame header in front of the event, within the received message. */
const roomy = new WeakSet<Uint8Array>()

/** Reads the varint at `pos`: its value and the position after it (or undefined past `end`). */
const readVarint = (u8: Uint8Array, pos: number, end: number): readonly [number, number] | undefined => {
  let value = 0
  let scale = 1
  while (pos < end) {
    const b = u8[pos++]!
    value += (b & 127) * scale
    if (b < 128) return [value, pos]
    scale *= 128
  }
  return undefined
}

/** After decoding an `AgentMessage` from `bytes`: marks its output payload when it can be passed on in place. */
export const markReceivedOutput = (bytes: Uint8Array, wire: Agent.AgentMessage, data: Uint8Array | undefined): void => {
  if (wire.kind?.$case !== "output" || data === undefined || data.length === 0) return
  const d = wire.kind.value.data
  if (d.buffer !== bytes.buffer || d.byteOffset + d.length !== bytes.byteOffset + bytes.length) return
  const start = d.byteOffset - 1 - varintSize(d.length)
  if (start < bytes.byteOffset) return
  const all = new Uint8Array(bytes.buffer)
  if (all[start] !== 26) return
  const length = readVarint(all, start + 1, d.byteOffset)
  if (length === undefined || length[0] !== d.length || length[1] !== d.byteOffset) return
  if (data.buffer !== d.buffer || data.byteOffset !== d.byteOffset || data.length !== d.length) return
  prefixed.add(data)
  if (start - GrpcFrameRoom.HEADER_BYTES >= bytes.byteOffset) roomy.add(data)
}

/**
 * `ExecEvent { stdout | stderr: bytes }` (fields 2 and 3): in place for a payload `markReceivedOutput` marked,
 * else in one new buffer.
 */
export const execEvent = (message: Client.ExecEvent, data?: Uint8Array): Buffer | undefined => {
  const kind = message.kind
  if (kind?.$case !== "stdout" && kind?.$case !== "stderr") return undefined
  const tag = kind.$case === "stdout" ? 18 : 26
  if (data !== undefined && prefixed.has(data)) {
    prefixed.delete(data)
    const start = data.byteOffset - 1 - varintSize(data.length)
    const framed = Buffer.from(data.buffer, start, data.byteOffset + data.length - start)
    framed[0] = tag
    // The received message's own fields in front of the event were read already: grpc-js may frame over them.
    if (roomy.has(data)) {
      roomy.delete(data)
      GrpcFrameRoom.markRoom(framed)
    }
    return framed
  }
  const payload = kind.value
  const buf = Buffer.allocUnsafe(1 + varintSize(payload.length) + payload.length)
  buf[0] = tag
  const pos = writeVarint(buf, 1, payload.length)
  buf.set(payload, pos)
  return buf
}

// --- decoding ------------------------------------------------------------------------------------------------------
// The generated decoders copy every `bytes` field (`Buffer.from(reader.bytes())`); these read the output messages
// with the payload as a view into the received bytes. Anything unusual (another field, a repeated field, a
// truncated message) answers `undefined`, and the generated decoder reads it.

const view = (bytes: Uint8Array, start: number, end: number): Buffer =>
  Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start)

/** `AgentMessage { output }` whose only field is the output. */
export const decodeAgentMessage = (bytes: Uint8Array): Agent.AgentMessage | undefined => {
  const end = bytes.length
  if (end < 2 || bytes[0] !== 26) return undefined
  const outer = readVarint(bytes, 1, end)
  if (outer === undefined || outer[1] + outer[0] !== end) return undefined
  let pos = outer[1]
  let sessionId = ""
  let pipe = 0
  let data: Buffer = Buffer.alloc(0)
  let offset = 0
  const seen = new Set<number>()
  while (pos < end) {
    const tag = bytes[pos++]!
    if (seen.has(tag)) return undefined
    seen.add(tag)
    const field = readVarint(bytes, pos, end)
    if (field === undefined) return undefined
    pos = field[1]
    switch (tag) {
      case 10:
      case 26: {
        const stop = pos + field[0]
        if (stop > end) return undefined
        if (tag === 10) sessionId = Buffer.from(bytes.buffer, bytes.byteOffset + pos, field[0]).toString("utf8")
        else data = view(bytes, pos, stop)
        pos = stop
        break
      }
      case 16:
        pipe = field[0]
        break
      case 32:
        offset = field[0]
        break
      default:
        return undefined
    }
  }
  if (!Number.isSafeInteger(offset) || pipe > 2) return undefined
  return { kind: { $case: "output", value: { sessionId, pipe, data, offset } } }
}

/** `ExecEvent { stdout | stderr }`. */
export const decodeExecEvent = (bytes: Uint8Array): Client.ExecEvent | undefined => {
  const end = bytes.length
  if (end < 2 || (bytes[0] !== 18 && bytes[0] !== 26)) return undefined
  const length = readVarint(bytes, 1, end)
  if (length === undefined || length[1] + length[0] !== end) return undefined
  const value = view(bytes, length[1], end)
  return { kind: bytes[0] === 18 ? { $case: "stdout", value } : { $case: "stderr", value } }
}
