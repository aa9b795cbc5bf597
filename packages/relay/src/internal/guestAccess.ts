/**
 * Share links from the relay's side: minting (for a machine, or for one live session of it), listing and revoking
 * them (workspace credentials only), and ending a guest's sessions, on the machine too (`guestEnd.ts`), the moment
 * its link stops being valid: at once on revocation here, and within one `guestSweep` for anything else (expiry,
 * key rotation, a retired signing key, revocation through another relay node).
 */
import { AccessError } from "@cmdop/domain/AccessError"
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import { RelayError } from "@cmdop/domain/RelayError"
import type { ShareError } from "@cmdop/domain/ShareError"
import { ShareLink, type ShareListPage, type SharePage } from "@cmdop/domain/ShareLink"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Authenticator from "../Authenticator.js"
import * as ShareCursor from "../share/shareCursor.js"
import { type CoreContext, internalError } from "./coreContext.js"
import * as GuestEnd from "./guestEnd.js"
import * as Limits from "./limits.js"
import { Turns } from "./turns.js"
import type { Registry } from "./sessions.js"
import { roleAllows, type Tenancy } from "./tenancy.js"

/** What a link reaches beyond its machine's fresh shells. */
export interface ShareOptions {
  /** Only this live interactive session of the machine (pair debugging): join it, nothing else. */
  readonly sessionId?: string
}

/**
 * `mint`, then a rest as long as it took (at most `Limits.MAX_MINT_REST_MS`) before the workspace's next mint may
 * start: a workspace minting in a burst gets at most about half of the event loop every workspace shares, whatever a
 * mint costs on this machine. Real timers on purpose (`performance.now`, `setTimeout`), not `Clock`: this paces the
 * process's own event loop, and a test on the TestClock must not have to step time for a mint to finish.
 */
const withRest = <A, E, R>(mint: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const started = performance.now()
    return Effect.zipLeft(
      mint,
      Effect.async<void>((resume) => {
        const rest = Math.min(performance.now() - started, Limits.MAX_MINT_REST_MS)
        const timer = setTimeout(() => resume(Effect.void), rest)
        return Effect.sync(() => clearTimeout(timer))
      })
    )
  })

/**
 * Mints in progress per workspace, at most `MAX_CONCURRENT_MINTS` at once; the rest wait their turn (waiting costs
 * nothing). A mint is store writes and a signature on the event loop every workspace shares: a workspace minting
 * in a burst queues behind itself, not in front of other workspaces' calls (16 at a time took another workspace's
 * exec p99 from 31 to 108 ms in the abuse suite). First come, first served (`turns.ts`); the turns of workspaces
 * with nothing in flight are dropped.
 */
const mintTurns = () => {
  const turns = new Map<string, { readonly turns: Turns; users: number }>()
  return <A, E, R>(workspaceId: string, mint: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const turn = turns.get(workspaceId) ?? {
          turns: new Turns(Limits.MAX_CONCURRENT_MINTS),
          users: 0
        }
        turn.users += 1
        turns.set(workspaceId, turn)
        return turn
      }),
      // The turn ends with a rest (`withRest`): a burst of mints, each synchronous store work, would otherwise run
      // back to back and keep other workspaces' messages waiting behind them.
      (turn) => turn.turns.run(withRest(mint)),
      (turn) =>
        Effect.sync(() => {
          turn.users -= 1
          if (turn.users === 0) turns.delete(workspaceId)
        })
    )
}

/** The share-link half of the core, bound to its context. */
export const make = (ctx: CoreContext, tenancy: Tenancy) => {
  const inTurn = mintTurns()
  return {
    createShare: (caller: Authenticator.Caller, query: string, ttlSeconds: number, options: ShareOptions = {}) =>
      inTurn(caller.workspaceId, createShare(ctx, tenancy, caller, query, ttlSeconds, options)),
    listShares: (caller: Authenticator.Caller, query: string | undefined, page: ShareListPage = {}) =>
      listShares(ctx, tenancy, caller, query, page),
    revokeShare: (caller: Authenticator.Caller, id: string) => revokeShare(ctx, tenancy, caller, id),
    /** Re-checks every live guest now (a cluster event said something changed elsewhere). */
    sweepGuestsNow: sweepGuests(ctx),
    endRevokedLink: (shareId: string) => endRevokedLink(ctx, shareId),
    /** Sweeps every `interval` for as long as the enclosing scope lives. */
    runGuestSweeps: (interval: Duration.DurationInput) =>
      sweepGuests(ctx).pipe(Effect.repeat(Schedule.spaced(interval)), Effect.forkScoped, Effect.asVoid)
  }
}

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
  ttlSeconds: number,
  options: ShareOptions
) {
  yield* tenancy.workspaceOnly(caller, "mint share links")
  const sessionId = options.sessionId === "" ? undefined : options.sessionId
  const machine =
    sessionId === undefined
      ? yield* tenancy.resolveMachine(caller, query)
      : (yield* liveSession(ctx, tenancy, caller, query, sessionId)).machine
  return yield* ctx.shares
    .mint({
      creator: { workspaceId: caller.workspaceId, principal: caller.principal, kind: caller.kind },
      machine: { id: machine.id, hostname: machine.hostname, workspaceId: machine.workspaceId },
      ttlSeconds,
      publicUrl: ctx.settings.publicUrl(),
      ...(sessionId === undefined ? {} : { sessionId })
    })
    .pipe(Effect.mapError(shareFailure(ctx.settings.server)))
})

/** A session-scoped link is minted for a live session of a connected machine only. */
const liveSession = (
  ctx: CoreContext,
  tenancy: Tenancy,
  caller: Authenticator.Caller,
  query: string,
  sessionId: string
) =>
  Effect.gen(function* () {
    const { conn, machine } = yield* tenancy.onlineConnection(caller, query)
    const pty = conn.ptys.get(sessionId)
    if (pty === undefined || pty.ended !== undefined)
      return yield* new RelayError({
        reason: "InvalidRequest",
        server: ctx.settings.server,
        detail: `no live interactive session ${sessionId} on ${machine.hostname}; "cmdop connect ${machine.hostname} --list-sessions" lists them`
      })
    return { machine, pty }
  })

const listShares = Effect.fn("RelayCore.listShares")(function* (
  ctx: CoreContext,
  tenancy: Tenancy,
  caller: Authenticator.Caller,
  query: string | undefined,
  page: ShareListPage
): Effect.fn.Return<SharePage, RelayCallError> {
  yield* tenancy.workspaceOnly(caller, "list share links")
  const server = ctx.settings.server
  const limit = page.limit === undefined || page.limit === 0 ? ShareCursor.DEFAULT_SHARE_PAGE : page.limit
  if (!Number.isInteger(limit) || limit < 1 || limit > ShareCursor.MAX_SHARE_PAGE)
    return yield* new RelayError({
      reason: "InvalidRequest",
      server,
      detail: `a share list page holds 1 to ${ShareCursor.MAX_SHARE_PAGE} links, not ${page.limit}; pass a smaller --limit (or --all to read every page)`
    })
  const after = page.after === undefined || page.after === "" ? undefined : ShareCursor.decode(page.after)
  if (page.after !== undefined && page.after !== "" && after === undefined)
    return yield* new RelayError({
      reason: "InvalidRequest",
      server,
      detail: `"${page.after.slice(0, 64)}" is not a share list cursor; pass the one the previous page printed after "more:"`
    })
  const machineId = query === undefined || query === "" ? undefined : (yield* tenancy.resolveMachine(caller, query)).id
  const found = yield* ctx.shares
    .listPage(caller.workspaceId, machineId, after === undefined ? { limit } : { limit, after })
    .pipe(Effect.mapError(shareFailure(server)))
  return found.next === undefined
    ? { links: found.links }
    : { links: found.links, next: ShareCursor.encode(found.next) }
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
  // Also for a link revoked before: a session it left behind (on a machine offline then) ends now.
  const ended = yield* GuestEnd.endGuestSessions(
    ctx.registry,
    link.id,
    "share link revoked",
    new AccessError({ reason: "Unauthenticated", detail: `share link ${link.id} was revoked` })
  )
  return new ShareLink({ ...link, sessionsEnded: ended })
})

/**
 * For a cluster node that revoked link `shareId` while this node holds its machine: ends the link's sessions here
 * now, if the store says the link no longer lets anyone in (the question alone ends nothing), and answers how many
 * this node ended for it — now, or a moment before on the cluster event — taken from the ledger once.
 */
const endRevokedLink = (ctx: CoreContext, shareId: string) =>
  Effect.gen(function* () {
    const check = yield* Effect.either(ctx.shares.check(shareId))
    if (check._tag === "Left" && check.left.reason !== "Unavailable") {
      const reason =
        check.left.reason === "Expired"
          ? "share link expired"
          : check.left.reason === "Revoked"
            ? "share link revoked"
            : check.left.message
      yield* GuestEnd.endGuestSessions(ctx.registry, shareId, reason, Authenticator.shareDenied(check.left))
    }
    return ctx.registry.guestEnds.take(shareId, yield* Clock.currentTimeMillis)
  }).pipe(Effect.withSpan("RelayCore.endRevokedLink"))

/** The links whose guests have sessions on a connected machine (opened, joined, or adopted from an agent). */
const guestLinks = (registry: Registry) => {
  const links = new Set<string>()
  for (const conn of registry.all()) {
    for (const session of conn.sessions.values()) if (session.shareId !== undefined) links.add(session.shareId)
    for (const pty of conn.ptys.values()) {
      if (pty.shareId !== undefined && pty.ended === undefined) links.add(pty.shareId)
      for (const viewer of pty.viewers) if (viewer.shareId !== undefined) links.add(viewer.shareId)
    }
  }
  return links
}

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

/**
 * Checks each link with guests on a connected machine again: by the guest's own token while one is attached,
 * else by the link's id (a session left running by a guest gone, or adopted after a relay restart). A link that
 * no longer validates ends its guests' sessions, on the machine too.
 */
const sweepGuests = (ctx: CoreContext) =>
  Effect.gen(function* () {
    const guests = liveGuests(ctx.registry)
    for (const shareId of guestLinks(ctx.registry)) {
      const guest = guests.get(shareId)
      const check = yield* Effect.either(
        guest === undefined ? ctx.shares.check(shareId) : ctx.shares.validate(Redacted.value(guest.credential))
      )
      if (check._tag === "Left" && check.left.reason !== "Unavailable") {
        const reason = check.left.reason === "Expired" ? "share link expired" : check.left.message
        yield* GuestEnd.endGuestSessions(ctx.registry, shareId, reason, Authenticator.shareDenied(check.left))
      }
    }
  }).pipe(Effect.withSpan("RelayCore.sweepGuests"))
