/**
 * Buffers for agent output with free room in front of the payload: the agent link's encoder
 * (`internal/fastWire.ts`) writes the `AgentMessage { output }` header into that room and hands grpc-js header and
 * payload as one view, so a full output message is not copied into a new buffer of its own. Only the first
 * message taken from the start of such a buffer is encoded in place; any other view of it is copied as usual.
 */

/** Bytes kept free in front of the payload: the header of an output message with a session id of up to ~100 bytes. */
export const ROOM = 128

/** The ArrayBuffers handed out, and where their payload starts (until the encoder used the room). */
const rooms = new WeakMap<ArrayBufferLike, number>()

/**
 * Buffers given back (`release`), by capacity, for the next `allocate`: bulk output then reuses a handful of
 * buffers instead of allocating one per message, which spares the garbage collector (V8 runs a full collection
 * every few dozen MB of short-lived large buffers). At most `KEEP` per capacity are kept.
 */
const free = new Map<number, Array<ArrayBuffer>>()
const KEEP = 16

/** Every ArrayBuffer `allocate` handed out (only those can be given back). */
const ours = new WeakSet<ArrayBufferLike>()

/** A buffer of `capacity` bytes for output, with `ROOM` free bytes in front of it (not from Node's shared pool). */
export const allocate = (capacity: number): Buffer => {
  const reused = free.get(capacity)?.pop()
  const all = reused === undefined ? Buffer.allocUnsafeSlow(ROOM + capacity) : Buffer.from(reused)
  ours.add(all.buffer)
  rooms.set(all.buffer, all.byteOffset + ROOM)
  return all.subarray(ROOM)
}

/** Whether `view` lies in a buffer from `allocate`. */
export const owns = (view: Uint8Array): boolean => ours.has(view.buffer)

/**
 * Gives back a buffer from `allocate` (any view of it) once nothing reads it any more: for output, once the
 * message in it was written (`@cmdop/grpc/GrpcWritten`). Its contents are overwritten by a later `allocate`.
 */
export const release = (view: Uint8Array): void => {
  const buffer = view.buffer
  if (!ours.has(buffer) || !(buffer instanceof ArrayBuffer)) return
  const capacity = buffer.byteLength - ROOM
  const list = free.get(capacity) ?? []
  if (list.length >= KEEP || list.includes(buffer)) return
  rooms.delete(buffer)
  list.push(buffer)
  free.set(capacity, list)
}

/**
 * Whether `header` bytes may be written right in front of `data`: `data` starts where a buffer from `allocate` starts
 * and its room was not used yet. Answers true once per buffer (the room is then taken).
 */
export const claim = (data: Uint8Array, header: number): boolean => {
  const start = rooms.get(data.buffer)
  if (start === undefined || start !== data.byteOffset || header > ROOM) return false
  rooms.delete(data.buffer)
  return true
}
