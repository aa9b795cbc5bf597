/**
 * What a guest (a share-link holder) may see and do among a machine's interactive sessions: a link reaches only
 * the sessions opened with that same link, and a link scoped to one session (pair debugging, an explicit act of
 * the owner) reaches that session only, and can neither open a shell nor run a command. A session the guest may
 * not reach is refused exactly like one that does not exist, so a guest learns nothing about the owner's.
 */
import { AccessError } from "@cmdop/domain/AccessError"
import { MachineError } from "@cmdop/domain/MachineError"
import type { PtySession } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import type { Caller } from "../Authenticator.js"
import type { PtyState } from "./sessions.js"

/** Whether `caller` may see and join `pty`. */
export const reaches = (caller: Caller, pty: PtyState): boolean => {
  if (caller.kind !== "guest") return true
  if (caller.sessionId !== undefined) return pty.id === caller.sessionId
  return pty.shareId !== undefined && pty.shareId === caller.shareId
}

/** A session the caller may not reach, refused like a session that does not exist. */
export const noSuchSession = (hostname: string, sessionId: string) =>
  new MachineError({ reason: "NotFound", query: `${hostname} session ${sessionId}`, candidates: [] })

/**
 * The same refusal for a request about a session (ending it): the machine was found, so the message names the
 * session, not a machine. (Attach keeps `noSuchSession`: its clients recognise a gone session by it.)
 */
export const unknownSession = (server: string, hostname: string, sessionId: string) =>
  new RelayError({
    reason: "InvalidRequest",
    server,
    detail: `no session ${sessionId} on ${hostname}; list them with cmdop connect sessions ${hostname}`
  })

/** Fails for a guest whose link is scoped to one session: it may join that session, nothing more. */
export const refuseNewSession = (caller: Caller, what: string): AccessError | undefined =>
  caller.kind === "guest" && caller.sessionId !== undefined
    ? new AccessError({
        reason: "PermissionDenied",
        detail: `this share link is for one terminal session (${caller.sessionId}) only; it cannot ${what}. Join it with --session ${caller.sessionId}, or ask the owner for a machine link`
      })
    : undefined

/**
 * A session as `caller` may see it in a listing: a guest sees no other caller's details (the owner's key prefix
 * of a shared session is replaced).
 */
export const listed = (caller: Caller, session: PtySession): PtySession =>
  caller.kind === "guest" && session.owner !== caller.principal ? { ...session, owner: "shared with you" } : session
