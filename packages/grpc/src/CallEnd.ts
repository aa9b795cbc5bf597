/**
 * Letting a client call end instead of resetting it. A cancel resets the call's HTTP/2 stream (RST_STREAM), and
 * servers count resets: nghttp2 (Node's HTTP/2) answers more than 1,000 in a burst (then 33 a second) with a GOAWAY
 * that fails every call on the connection. So a call that is over for its reader — it took the final answer
 * (`GrpcClient`'s `isLast`), or asked the server in-band to end it (a peer call's `cancel`) — is left to end by
 * itself: whatever else the server still sends is read and dropped (grpc-js gives the status only once the answers
 * before it are taken), and the call is reset only if it has not ended within `fallbackMs`.
 */

/** The part of a grpc-js client call this uses. */
export interface EndingCall {
  cancel(): void
  once(event: "status", f: () => void): unknown
  resume?: () => unknown
}

/**
 * Waits for `call`'s status without holding anything; resets it if none came within `fallbackMs` (unref'd), through
 * `pace` when given (a connection's `ResetPacer`: resets on a shared connection must not come in a burst).
 */
export const awaitEndOrReset = (call: EndingCall, fallbackMs: number, pace?: (reset: () => void) => void): void => {
  const reset = () => call.cancel()
  const timer = setTimeout(() => (pace === undefined ? reset() : pace(reset)), fallbackMs)
  timer.unref()
  call.once("status", () => clearTimeout(timer))
  call.resume?.()
}
