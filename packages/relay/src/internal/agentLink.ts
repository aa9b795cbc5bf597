/**
 * What the relay does with each message on an agent's stream: heartbeats (re-checking the agent's credential
 * every time, so a rotated key drops the machine), session output into the session it belongs to (exec: the
 * client's queue, acknowledged as the client reads; PTY: the relay's ring, acknowledged at once), exits, and the
 * agent's stdin acknowledgements.
 */
import { ExecEvent } from "@cmdop/domain/RelayClient"
import { type AgentMessage, Pipe } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Authenticator from "../Authenticator.js"
import type { RelayStore } from "../store/service.js"
import * as Attach from "./attach.js"
import type { Connection } from "./sessions.js"

/** The handler of one agent connection's messages. */
export const dispatcher = (
  conn: Connection,
  deps: {
    readonly store: RelayStore["Type"]
    readonly authenticate: (credential: Connection["credential"]) => Effect.Effect<Authenticator.Caller, unknown>
  }
) => {
  const { authenticate, store } = deps
  return (message: AgentMessage): Effect.Effect<void> =>
    Effect.gen(function* () {
      conn.lastSeen = yield* Clock.currentTimeMillis
      const kind = message.kind
      switch (kind?.$case) {
        case "heartbeat": {
          // The agent's credential is checked again at every heartbeat: a rotated key drops the machine.
          const still = yield* Effect.either(authenticate(conn.credential))
          if (still._tag === "Left" || still.right.workspaceId !== conn.workspaceId) {
            yield* Deferred.succeed(conn.closed, "the agent's workspace key is no longer valid")
            return
          }
          yield* store.heartbeat(conn.machineId, conn.lastSeen).pipe(Effect.ignore)
          yield* conn.send({ kind: { $case: "heartbeat", value: { at: kind.value.at } } })
          return
        }
        case "output": {
          const pty = conn.ptys.get(kind.value.sessionId)
          if (pty) {
            // Stored in the relay's ring at once, so acknowledged at once: viewers read at their own pace.
            yield* Attach.pushOutput(pty, kind.value.offset, kind.value.data, conn.lastSeen)
            yield* conn.send({
              kind: {
                $case: "ack",
                value: { sessionId: pty.id, pipe: Pipe.PIPE_STDOUT, bytes: kind.value.data.byteLength }
              }
            })
            return
          }
          const session = conn.sessions.get(kind.value.sessionId)
          if (!session) {
            // Nobody is reading any more: return the credit so the agent is never stuck on it.
            yield* conn.send({
              kind: {
                $case: "ack",
                value: {
                  sessionId: kind.value.sessionId,
                  pipe: kind.value.pipe,
                  bytes: kind.value.data.byteLength
                }
              }
            })
            return
          }
          const event =
            kind.value.pipe === Pipe.PIPE_STDERR
              ? ExecEvent.Stderr({ data: kind.value.data })
              : ExecEvent.Stdout({ data: kind.value.data })
          yield* Queue.offer(session.items, { _tag: "Event", event })
          return
        }
        case "exit": {
          const pty = conn.ptys.get(kind.value.sessionId)
          if (pty) {
            conn.ptys.delete(pty.id)
            yield* Attach.finish(pty, {
              ended: {
                exitCode: kind.value.exitCode,
                ...(kind.value.signal === "" ? {} : { signal: kind.value.signal }),
                reason: kind.value.error === "" ? "exited" : kind.value.error
              }
            })
            return
          }
          const session = conn.sessions.get(kind.value.sessionId)
          if (!session) return
          session.exited = true
          conn.sessions.delete(session.id)
          const e = kind.value
          yield* Queue.offer(session.items, {
            _tag: "Event",
            event: ExecEvent.Exit({
              exitCode: e.exitCode,
              timedOut: e.timedOut,
              durationMs: e.durationMs,
              ...(e.signal === "" ? {} : { signal: e.signal }),
              ...(e.error === "" ? {} : { error: e.error })
            })
          })
          return
        }
        case "ack": {
          const pty = conn.ptys.get(kind.value.sessionId)
          if (pty && kind.value.pipe === Pipe.PIPE_STDIN) yield* pty.inputCredit.release(kind.value.bytes)
          const session = conn.sessions.get(kind.value.sessionId)
          if (session && kind.value.pipe === Pipe.PIPE_STDIN) yield* session.stdinCredit.release(kind.value.bytes)
          return
        }
        default:
          return
      }
    })
}
