/**
 * The relay's side of an exec session's output window: bytes the agent sent that the relay has not acknowledged
 * yet (they sit in the session's queue until the client reads them). An agent may have at most its connection's
 * `window` bytes outstanding per session; one that sends more is ignoring flow control, and the relay cuts its
 * connection rather than buffer without bound.
 */
import type { Session } from "./sessions.js"

const outstanding = new WeakMap<Session, { bytes: number }>()

const counter = (session: Session) => {
  let c = outstanding.get(session)
  if (c === undefined) {
    c = { bytes: 0 }
    outstanding.set(session, c)
  }
  return c
}

/** Counts `bytes` of output received for `session`; false when that takes it over `window`. */
export const charge = (session: Session, bytes: number, window: number): boolean => {
  const c = counter(session)
  c.bytes += bytes
  return c.bytes <= window
}

/** The relay acknowledged `bytes` of the session's output to the agent. */
export const credit = (session: Session, bytes: number): void => {
  const c = counter(session)
  c.bytes = Math.max(0, c.bytes - bytes)
}

/** Bytes of the session's output received and not yet acknowledged. */
export const unacknowledged = (session: Session): number => outstanding.get(session)?.bytes ?? 0
