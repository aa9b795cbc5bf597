/**
 * Hooks run once grpc-js has written a message: serialized, framed (copied into a frame of grpc-js's own, or framed
 * in place, `GrpcFrameRoom`) and handed to the HTTP/2 stream. On a client this holds only without grpc-js's retry
 * buffer (`grpc.per_rpc_retry_buffer_size: 0`), which otherwise reports a buffered message written at once. A sender
 * whose serialized bytes share memory with a buffer it wants to reuse registers the message here and gets the buffer
 * back only then. A message never written (the call ended first) never runs its hook: the buffer is then simply
 * left to the garbage collector.
 */

const hooks = new WeakMap<object, () => void>()

/** Runs `f` once `message` has been written by a call of this package (at most once). */
export const whenWritten = (message: object, f: () => void): void => {
  hooks.set(message, f)
}

/** The write callback for `value`, if a hook waits for it (used by the call writers). */
export const callbackFor = (value: unknown): ((error?: unknown) => void) | undefined => {
  if (typeof value !== "object" || value === null) return undefined
  const f = hooks.get(value)
  if (f === undefined) return undefined
  hooks.delete(value)
  return (error) => {
    if (error === undefined || error === null) f()
  }
}
