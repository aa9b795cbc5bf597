/**
 * How the relay's messages to one agent enter its outbox (`outbox.ts`). Keystrokes and stdin wait for the session's
 * credit before they get here, and sessions are bounded by the relay's limits; four kinds are bounded by nothing
 * before this point, so while one waits the next of its kind is folded into it:
 * - `SessionResize`: the latest size (a client dragging a window, or flooding resizes, is one message);
 * - `SessionSignal`: one pending signal of a name per session, as Unix keeps a standard signal pending once;
 * - `SessionAck`: the sum of the credit returned, per session and pipe (capped at what the field holds);
 * - `Heartbeat`: the latest answer (an agent that sends heartbeats and reads nothing gets one).
 * A folded message keeps the place of the one it joined.
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import type { Outbox } from "./outbox.js"

const UINT32_MAX = 0xffff_ffff

const latest = <A>(_waiting: A, next: A): A => next
const first = <A>(waiting: A): A => waiting
const summed = (waiting: AgentLink.RelayMessage, next: AgentLink.RelayMessage): AgentLink.RelayMessage =>
  waiting._tag === "SessionAck" && next._tag === "SessionAck"
    ? { ...waiting, bytes: Math.min(UINT32_MAX, waiting.bytes + next.bytes) }
    : next

/** Puts `message` in the agent's outbox, folded into a waiting one of its kind where that applies. */
export const enqueue = (outbox: Outbox<AgentLink.RelayMessage, RelayCallError>, message: AgentLink.RelayMessage) => {
  switch (message._tag) {
    case "SessionResize":
      return outbox.merge(`resize\0${message.sessionId}`, message, latest)
    case "SessionSignal":
      return outbox.merge(`signal\0${message.sessionId}\0${message.signal}`, message, first)
    case "SessionAck":
      return outbox.merge(`ack\0${message.sessionId}\0${message.pipe}`, message, summed)
    case "Heartbeat":
      return outbox.merge("heartbeat", message, latest)
    default:
      return outbox.push(message)
  }
}
