/**
 * How often an agent may send heartbeats: a real agent sends one every `heartbeatSeconds` (the relay's `Welcome`
 * says how many); each costs the relay a credential check and an answer. A token bucket per connection: a burst
 * of {@link BURST}, then one a second. An agent that goes faster is misbehaving and its connection is cut (as one
 * that ignores its flow-control window is), with {@link Limits.HEARTBEAT_FLOOD} as the reason it is told.
 */
import type { Connection } from "./sessions.js"

/** Heartbeats an agent may send at once (reconnects, a clock jump, a paused process catching up). */
export const BURST = 10

/** Heartbeats an agent may send per second, sustained. */
export const PER_SECOND = 1

const buckets = new WeakMap<Connection, { tokens: number; at: number }>()

/** Takes a heartbeat's token at `now` (ms); false when the connection has none left (it is flooding). */
export const allow = (conn: Connection, now: number): boolean => {
  const bucket = buckets.get(conn)
  if (bucket === undefined) {
    buckets.set(conn, { tokens: BURST - 1, at: now })
    return true
  }
  bucket.tokens = Math.min(BURST, bucket.tokens + ((now - bucket.at) / 1000) * PER_SECOND)
  bucket.at = now
  if (bucket.tokens < 1) return false
  bucket.tokens -= 1
  return true
}
