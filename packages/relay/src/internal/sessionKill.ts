/**
 * Ending one interactive session on request (`cmdop connect sessions <host> --kill-session <id>`): the relay asks
 * the agent to close it (the agent kills the shell's whole process tree, SIGHUP then SIGKILL after its grace),
 * waits for the agent's report of the end, and answers with it. The session's viewers see it end like any other
 * end. A guest may end only the sessions its own link opened: a session-scoped link joined someone else's session
 * and may not end it; any session the caller cannot see is refused like one that does not exist.
 */
import { AccessError } from "@cmdop/domain/AccessError"
import type { KilledSession } from "@cmdop/domain/RelayClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Caller } from "../Authenticator.js"
import type { CoreContext } from "./coreContext.js"
import * as GuestScope from "./guestScope.js"
import { awaitChange } from "./ptyState.js"
import type { Connection, PtyState } from "./sessions.js"
import type { Tenancy } from "./tenancy.js"

/** How long the caller waits for the agent to report the end (its kill grace is 2 s). */
const WAIT = Duration.seconds(15)

export const make = (ctx: CoreContext, tenancy: Tenancy) =>
  Effect.fn("RelayCore.killSession")(function* (caller: Caller, query: string, sessionId: string) {
    const { conn, machine } = yield* tenancy.onlineConnection(caller, query)
    const pty = conn.ptys.get(sessionId)
    if (!pty || pty.ended !== undefined || !GuestScope.reaches(caller, pty))
      return yield* GuestScope.unknownSession(ctx.settings.server, machine.hostname, sessionId)
    if (caller.kind === "guest" && pty.shareId !== caller.shareId)
      return yield* new AccessError({
        reason: "PermissionDenied",
        detail: `this share link joined session ${sessionId} but did not open it; only its owner can end it`
      })
    if (caller.shareId !== undefined) yield* ctx.shares.recordUse(caller.shareId, `kill session ${sessionId}`)
    const end = yield* closeAndWait(conn, pty, `ended by ${caller.principal}`)
    return {
      machine,
      sessionId,
      ended: end !== undefined,
      exitCode: end?.exitCode ?? 0,
      ...(end?.signal === undefined ? {} : { signal: end.signal }),
      reason: end?.reason ?? "closing"
    } satisfies KilledSession
  })

/** Asks the agent to close the session and waits (bounded) for its end; `undefined` when it did not come. */
const closeAndWait = (conn: Connection, pty: PtyState, reason: string) =>
  Effect.gen(function* () {
    if (pty.closing === undefined) {
      pty.closing = reason
      yield* conn.send({ _tag: "SessionClose", sessionId: pty.id, reason })
    }
    // The end is part of the session's state, checked again at every change: it cannot slip past the wait.
    yield* awaitChange(pty, () => (pty.ended !== undefined || pty.lost !== undefined ? true : undefined))
    return pty.ended
  }).pipe(
    Effect.timeoutOption(WAIT),
    Effect.map((o) => (o._tag === "Some" ? o.value : undefined))
  )
