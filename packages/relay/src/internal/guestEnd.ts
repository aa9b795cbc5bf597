/**
 * The end of a guest's sessions when its share link stops being valid (revoked, expired, key rotated): on the
 * machine, not just on the wire. Exec sessions of the link fail for the client and are closed at the agent; the
 * interactive sessions the link opened are closed at the agent (which kills the shell's whole process tree) and
 * their viewers told why; a guest let into someone else's session (a session-scoped link) is cut off from it,
 * and that session goes on.
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as PtyState from "./ptyState.js"
import type { Registry } from "./sessions.js"

/** Ends every session of `shareId` on every connected machine, at once; the number of sessions ended. */
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
        yield* Queue.offer(session.items, { _tag: "Lost", error })
        yield* conn.send({ _tag: "SessionClose", sessionId: session.id, reason })
        ended += 1
      }
      for (const pty of conn.ptys.values()) {
        const end = { exitCode: 0, reason }
        yield* PtyState.cutViewers(pty, shareId, end)
        if (pty.shareId !== shareId || pty.ended !== undefined || pty.closing !== undefined) continue
        pty.closing = reason
        yield* conn.send({ _tag: "SessionClose", sessionId: pty.id, reason })
        ended += 1
      }
    }
    return ended
  })
