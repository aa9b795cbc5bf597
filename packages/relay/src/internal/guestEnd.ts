/**
 * The end of a guest's sessions when its share link stops being valid (revoked, expired, key rotated): on the
 * machine, not just on the wire. Exec sessions of the link fail for the client and are closed at the agent; the
 * interactive sessions the link opened are closed at the agent (which kills the shell's whole process tree) and
 * their viewers told why; a guest let into someone else's session (a session-scoped link) is cut off from it,
 * and that session goes on. A person who lost their access to a workspace loses the shells they opened the same
 * way (`endPersonSessions`).
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as PtyState from "./ptyState.js"
import type { Connection, Registry } from "./sessions.js"

/**
 * Ends every session of `shareId` on every connected machine, at once; the number of sessions ended (also kept in
 * the registry's ledger for a node that revoked the link elsewhere and asks).
 */
export const endGuestSessions = (
  registry: Registry,
  shareId: string,
  reason: string,
  error: RelayCallError
): Effect.Effect<number> =>
  Effect.gen(function* () {
    let ended = 0
    for (const conn of registry.all()) {
      for (const session of conn.sessions.values()) {
        if (session.shareId !== shareId || session.exited) continue
        // Ended here: not counted or closed again by the next sweep, nor by the session's own end.
        session.exited = true
        yield* Queue.offer(session.items, { _tag: "Lost", error })
        yield* conn.send({ _tag: "SessionClose", sessionId: session.id, reason })
        ended += 1
      }
      for (const pty of conn.ptys.values()) {
        const end = { exitCode: 0, reason, cut: true } as const
        yield* PtyState.cutViewers(pty, shareId, end)
        if (pty.shareId !== shareId || pty.ended !== undefined || pty.closing !== undefined) continue
        pty.closing = reason
        yield* conn.send({ _tag: "SessionClose", sessionId: pty.id, reason })
        ended += 1
      }
    }
    registry.guestEnds.add(shareId, ended, yield* Clock.currentTimeMillis)
    return ended
  })

/**
 * The end of the interactive sessions a person opened on one machine, when they lost their access to its workspace
 * (removed, disabled, demoted to viewer): closed at the agent like a revoked guest's (the shell's whole process
 * tree ends), every viewer told why at once. The number of sessions ended.
 */
export const endPersonSessions = (conn: Connection, principal: string, reason: string): Effect.Effect<number> =>
  Effect.gen(function* () {
    let ended = 0
    for (const pty of conn.ptys.values()) {
      if (pty.owner !== principal || pty.ended !== undefined || pty.closing !== undefined) continue
      pty.closing = reason
      const end = { exitCode: 0, reason, cut: true } as const
      for (const viewer of pty.viewers) {
        if (viewer.cutWith !== undefined) continue
        viewer.cutWith = end
        yield* Deferred.succeed(viewer.cut, end)
      }
      yield* conn.send({ _tag: "SessionClose", sessionId: pty.id, reason })
      ended += 1
    }
    return ended
  })
