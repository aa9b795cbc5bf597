/**
 * What the relay does with each message on an agent's stream: heartbeats (re-checking the agent's credential
 * every time, so a rotated key drops the machine; at most one a second, `heartbeatRate.ts`), session output into the session it belongs to (exec: the
 * client's queue, acknowledged as the client reads; PTY: the relay's ring, acknowledged at once, in batches), exits,
 * and the agent's stdin acknowledgements. A `Hello` after the handshake is ignored. An agent that sends a session more
 * output than its window allows is cut (`flowControl.ts`).
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import { ExecEvent } from "@cmdop/domain/RelayClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type { CoreContext } from "./coreContext.js"
import * as Approvals from "./approvals.js"
import * as ExitStatus from "./exitStatus.js"
import * as FlowControl from "./flowControl.js"
import * as Limits from "./limits.js"
import * as GateCheck from "./gateCheck.js"
import * as HeartbeatRate from "./heartbeatRate.js"
import * as PtyState from "./ptyState.js"
import type { Connection } from "./sessions.js"

type Deps = Pick<CoreContext, "store" | "recheck"> & Partial<Pick<CoreContext, "shares">>

/** The handler of one agent connection's messages. */
export const dispatcher =
  (ctx: Deps, conn: Connection) =>
  (message: AgentLink.AgentMessage): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      conn.lastSeen = now
      switch (message._tag) {
        case "Heartbeat":
          return heartbeat(ctx, conn, message)
        case "SessionOutput":
          return output(conn, message)
        case "SessionExit":
          return Effect.zipRight(gateDenied(ctx, conn, message), exit(conn, message))
        case "SessionAck":
          return ack(conn, message)
        case "Hello":
          return Effect.void
        case "ApprovalPending":
        case "ApprovalSettled":
          return Approvals.record(conn, message)
      }
    })

/** A session the machine's gate refused: the share link's use log says `denied by gate`, without the command. */
const gateDenied = (ctx: Deps, conn: Connection, message: AgentLink.SessionExit) =>
  message.gateDenied !== true || ctx.shares === undefined
    ? Effect.void
    : GateCheck.recordDenied(
        ctx.shares,
        conn.ptys.get(message.sessionId)?.shareId ?? conn.sessions.get(message.sessionId)?.shareId
      )

const heartbeat = (ctx: Deps, conn: Connection, message: AgentLink.Heartbeat) =>
  Effect.gen(function* () {
    // A flood of heartbeats would cost a credential check and an answer each: the connection is cut instead.
    if (!HeartbeatRate.allow(conn, conn.lastSeen)) return yield* conn.close(Limits.HEARTBEAT_FLOOD)
    if (message.gateConfigured !== undefined && message.gateConfigured !== conn.gateConfigured) {
      conn.gateConfigured = message.gateConfigured
      // Stored too, for the listings of every relay node (rare: a permissions file appeared or went). A write the
      // store could not take now is taken at the agent's next connect.
      yield* ctx.store
        .setGateConfigured(conn.machineId, message.gateConfigured)
        .pipe(Effect.catchAll((e) => Effect.logWarning(`cannot store ${conn.hostname}'s gate: ${e.message}`)))
    }
    // The agent's credential is checked again at every heartbeat: a rotated key drops the machine. A check the
    // store could not answer (busy, unreachable) is no verdict: the connection stays, checked at the next one.
    const still = yield* Effect.either(ctx.recheck(conn.credential))
    if (still._tag === "Left" && still.left._tag === "AccessError")
      return yield* conn.close("the agent's workspace key is no longer valid")
    if (still._tag === "Left") return yield* conn.send({ _tag: "Heartbeat", at: message.at })
    // A person's login now acts in another workspace (they switched it): the agent registers there next.
    if (still.right.workspaceId !== conn.workspaceId)
      return yield* conn.close(`the machine moves to workspace ${still.right.workspaceName}`)
    // The time reaches the store with the next batch (`heartbeatWrites.ts`), not as one commit per heartbeat.
    yield* conn.send({ _tag: "Heartbeat", at: message.at })
  })

/**
 * PTY output is acknowledged in batches of this many bytes (at most half the window, so the agent always has
 * credit left while a batch fills): a keystroke's echo then costs the agent no ack message of its own.
 */
export const ptyAckBatch = (window: number): number => Math.min(64 * 1024, Math.floor(window / 2))

const output = (conn: Connection, message: AgentLink.SessionOutput) => {
  const ack = { _tag: "SessionAck", sessionId: message.sessionId, bytes: message.data.byteLength } as const
  const pty = conn.ptys.get(message.sessionId)
  // Stored in the relay's ring at once (the viewers woken first: the echo goes out before any ack), so acknowledged
  // at once, in batches (`ptyAckBatch`): viewers read at their own pace.
  if (pty) {
    PtyState.pushOutput(pty, message.offset, message.data, conn.lastSeen)
    pty.unacked += message.data.byteLength
    if (pty.unacked < ptyAckBatch(conn.window)) return Effect.void
    const bytes = pty.unacked
    pty.unacked = 0
    return conn.send({ ...ack, bytes, pipe: "stdout" })
  }
  const session = conn.sessions.get(message.sessionId)
  // Nobody is reading any more: return the credit so the agent is never stuck on it.
  if (!session) return conn.send({ ...ack, pipe: message.pipe })
  // More than the window outstanding: the agent ignores flow control. Cut it before buffering any of this.
  if (!FlowControl.charge(session, message.data.byteLength, conn.window)) return conn.close(Limits.WINDOW_OVERRUN)
  const event =
    message.pipe === "stderr" ? ExecEvent.Stderr({ data: message.data }) : ExecEvent.Stdout({ data: message.data })
  return Queue.offer(session.items, { _tag: "Event", event })
}

const exit = (conn: Connection, message: AgentLink.SessionExit) => {
  // Checked before any client sees it (a compromised agent's code or signal name is not passed on as is).
  const status = ExitStatus.sanitize(message.exitCode, message.signal)
  const signal = status.signal === undefined ? {} : { signal: status.signal }
  const error = message.error ?? status.invalid
  const pty = conn.ptys.get(message.sessionId)
  if (pty) {
    conn.ptys.delete(pty.id)
    return PtyState.finish(pty, {
      ended: { exitCode: status.exitCode, ...signal, reason: error ?? pty.closing ?? "exited" }
    })
  }
  const session = conn.sessions.get(message.sessionId)
  if (!session) return Effect.void
  session.exited = true
  conn.sessions.delete(session.id)
  return Queue.offer(session.items, {
    _tag: "Event",
    event: ExecEvent.Exit({
      exitCode: status.exitCode,
      timedOut: message.timedOut,
      durationMs: message.durationMs,
      ...signal,
      ...(error === undefined ? {} : { error })
    })
  })
}

/** Credit for stdin the agent consumed. */
const ack = (conn: Connection, message: AgentLink.SessionAck) =>
  Effect.gen(function* () {
    if (message.pipe !== "stdin") return
    const pty = conn.ptys.get(message.sessionId)
    if (pty) pty.inputCredit.release(message.bytes)
    const session = conn.sessions.get(message.sessionId)
    if (session) yield* session.stdinCredit.release(message.bytes)
  })
