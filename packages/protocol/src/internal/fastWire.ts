/**
 * Encoders for the messages that carry bulk output, writing the same protobuf bytes as the generated code into one
 * buffer of the exact size: the payload is copied once. (The generated encoder grows its buffer by doubling,
 * shifts the payload when a nested message's length needs more than one byte, then copies it all out again.)
 * Each answers `undefined` for a message it does not cover; the generated encoder then does the work.
 */
import type * as Agent from "../generated/cmdop/connect/v1/agent.js"
import type * as Client from "../generated/cmdop/connect/v1/client.js"

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

/** `AgentMessage { output: SessionOutput }` (field 3), for output with a payload. */
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
  const buf = Buffer.allocUnsafe(1 + varintSize(inner) + inner)
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
    buf.set(data, pos)
    pos += data.length
  }
  if (offset !== 0) {
    buf[pos++] = 32
    writeVarint(buf, pos, offset)
  }
  return buf
}

/** `ExecEvent { stdout | stderr: bytes }` (fields 2 and 3). */
export const execEvent = (message: Client.ExecEvent): Buffer | undefined => {
  const kind = message.kind
  if (kind?.$case !== "stdout" && kind?.$case !== "stderr") return undefined
  const data = kind.value
  const buf = Buffer.allocUnsafe(1 + varintSize(data.length) + data.length)
  buf[0] = kind.$case === "stdout" ? 18 : 26
  const pos = writeVarint(buf, 1, data.length)
  buf.set(data, pos)
  return buf
}
