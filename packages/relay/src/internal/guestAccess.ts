/**
 * Share links from the relay's side: minting, listing and revoking them (workspace credentials only), and ending
 * a guest's live sessions the moment its link stops being valid: at once on revocation here, and within one
 * `guestSweep` for anything else (expiry, key rotation, revocation through another relay node).
 */
import { AccessError } from "@cmdop/domain/AccessError"
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import type { ShareError } from "@cmdop/domain/ShareError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Authenticator from "../Authenticator.js"
import { type CoreContext, internalError } from "./coreContext.js"
import * as PtyState from "./ptyState.js"
import type { Registry } from "./sessions.js"
import { roleAllows, type Tenancy } from "./tenancy.js"

/** The share-link half of the core, bound to its context. */
export const make = (ctx: CoreContext, tenancy: Tenancy) => ({
  createShare: (caller: Authenticator.Caller, query: string, ttlSeconds: number) =>
    createShare(ctx, tenancy, caller, query, ttlSeconds),
  listShares: (caller: Authenticator.Caller, query: string | undefined) => listShares(ctx, tenancy, caller, query),
  revokeShare: (caller: Authenticator.Caller, id: string) => revokeShare(ctx, tenancy, caller, id),
  /** Sweeps every `interval` for as long as the enclosing scope lives. */
  runGuestSweeps: (interval: Duration.DurationInput) =>
    sweepGuests(ctx).pipe(Effect.repeat(Schedule.spaced(interval)), Effect.forkScoped, Effect.asVoid)
})

const shareFailure =
  (server: string) =>
  (e: ShareError): RelayCallError =>
    e.reason === "InvalidTtl"
      ? new RelayError({ reason: "InvalidRequest", server, detail: e.message })
      : e.reason === "Unavailable"
        ? new RelayError({ reason: "Internal", server, detail: e.message })
        : e.reason === "NotFound"
          ? new AccessError({ reason: "PermissionDenied", detail: e.message })
          : Authenticator.shareDenied(e)

const createShare = Effect.fn("RelayCore.createShare")(function* (
  ctx: CoreContext,
  tenancy: Tenancy,
  caller: Authenticator.Caller,
  query: string,
  ttlSeconds: number
) {
  yield* tenancy.workspaceOnly(caller, "mint share links")
  const machine = yield* tenancy.resolveMachine(caller, query)
  return yield* ctx.shares
    .mint({
      creator: { workspaceId: caller.workspaceId, principal: caller.principal, kind: caller.kind },
      machine: { id: machine.id, hostname: machine.hostname, workspaceId: machine.workspaceId },
      ttlSeconds,
      publicUrl: ctx.settings.publicUrl()
    })
    .pipe(Effect.mapError(shareFailure(ctx.settings.server)))
})

const listShares = Effect.fn("RelayCore.listShares")(function* (
  ctx: CoreContext,
  tenancy: Tenancy,
  caller: Authenticator.Caller,
  query: string | undefined
) {
  yield* tenancy.workspaceOnly(caller, "list share links")
  const machineId = query === undefined || query === "" ? undefined : (yield* tenancy.resolveMachine(caller, query)).id
  return yield* ctx.shares.list(caller.workspaceId, machineId).pipe(Effect.mapError(shareFailure(ctx.settings.server)))
})

const revokeShare = Effect.fn("RelayCore.revokeShare")(function* (
  ctx: CoreContext,
  tenancy: Tenancy,
  caller: Authenticator.Caller,
  id: string
) {
  yield* tenancy.workspaceOnly(caller, "revoke share links")
  if (!roleAllows(caller, "owner")) {
    // A member revokes only the links they minted.
    const record = yield* ctx.store.getShareLink(id).pipe(Effect.mapError(internalError(ctx.settings.server)))
    if (Option.isSome(record) && record.value.creator !== caller.principal)
      yield* tenancy.requireRole(caller, "owner", "revoke a share link someone else minted")
  }
  const link = yield* ctx.shares.revoke(caller.workspaceId, id).pipe(Effect.mapError(shareFailure(ctx.settings.server)))
  yield* endGuestSessions(
    ctx.registry,
    link.id,
    "share link revoked",
    new AccessError({ reason: "Unauthenticated", detail: `share link ${link.id} was revoked` })
  )
  return link
})

/** Ends every live session that came through `shareId`, at once, with `reason`. */
const endGuestSessions = (registry: Registry, shareId: string, reason: string, error: RelayCallError) =>
  Effect.forEach(
    registry.all(),
    (conn) =>
      Effect.gen(function* () {
        for (const session of conn.sessions.values()) {
          if (session.shareId !== shareId) continue
          yield* Queue.offer(session.items, { _tag: "Lost", error })
          yield* conn.send({ _tag: "SessionClose", sessionId: session.id, reason })
        }
        for (const pty of conn.ptys.values()) yield* PtyState.cutViewers(pty, shareId, { exitCode: 0, reason })
      }),
    { discard: true }
  )

/** The live guests, one credential per share link. */
const liveGuests = (registry: Registry) => {
  const guests = new Map<string, Authenticator.Caller>()
  for (const conn of registry.all()) {
    for (const session of conn.sessions.values())
      if (session.guest?.shareId !== undefined) guests.set(session.guest.shareId, session.guest)
    for (const pty of conn.ptys.values())
      for (const viewer of pty.viewers)
        if (viewer.guest?.shareId !== undefined) guests.set(viewer.guest.shareId, viewer.guest)
  }
  return guests
}

/** Checks each live guest's link again; a link that no longer validates ends its guests' sessions. */
const sweepGuests = (ctx: CoreContext) =>
  Effect.gen(function* () {
    for (const [shareId, guest] of liveGuests(ctx.registry)) {
      const check = yield* Effect.either(ctx.shares.validate(Redacted.value(guest.credential)))
      if (check._tag === "Left" && check.left.reason !== "Unavailable") {
        const reason = check.left.reason === "Expired" ? "share link expired" : check.left.message
        yield* endGuestSessions(ctx.registry, shareId, reason, Authenticator.shareDenied(check.left))
      }
    }
  }).pipe(Effect.withSpan("RelayCore.sweepGuests"))
