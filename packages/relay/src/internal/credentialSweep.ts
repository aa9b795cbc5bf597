/**
 * Credentials re-checked while they are in use, so an account change reaches live work within one sweep (250 ms
 * on a relay with accounts, 5 s otherwise), whether it was made in the cabinet or by the relay host's CLI on the same database:
 *
 *  - a person's or a key's exec session, or their view of an interactive session, ends when the credential no
 *    longer authenticates in that workspace (signed out, login revoked, removed from the workspace, key revoked or
 *    rotated) or no longer reaches machines there (demoted to viewer);
 *  - an agent connected with a person's login is closed when the login is no longer valid, or when it now acts in
 *    another workspace (the owner switched their active workspace): the agent reconnects at once and registers
 *    there, which moves the machine (`machineOwnership.ts`). Key-connected agents are left to their heartbeat.
 *
 *  - what a person left without a token of theirs (the share links they minted, the shells they opened) ends
 *    when they lose their access to the workspace: removed, disabled, demoted to viewer (`sweepPeople`).
 *
 * Each distinct credential is checked once per sweep; a store failure (not a refusal) leaves everything as it is.
 */
import { AccessError } from "@cmdop/domain/AccessError"
import type { WorkspaceId } from "@cmdop/domain/Machine"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import {
  type Caller,
  isPersonPrincipal,
  looksLikeAccessToken,
  type PersonAccess,
  personAccessOf
} from "../Authenticator.js"
import type { CoreContext } from "./coreContext.js"
import * as GuestEnd from "./guestEnd.js"
import type { Connection } from "./sessions.js"
import { roleAllows } from "./tenancy.js"

/** Why a holder must stop, or undefined while it may go on (or the check could not run). */
type Verdict = string | undefined

const holderVerdict = (ctx: CoreContext, holder: Caller): Effect.Effect<Verdict> =>
  ctx.authenticate(holder.credential, holder.kind === "user" ? holder.workspaceId : undefined).pipe(
    Effect.map((now): Verdict => {
      if (now.workspaceId !== holder.workspaceId) return `no longer allowed in workspace ${holder.workspaceName}`
      if (!roleAllows(now, "member"))
        return `a ${now.role} of workspace ${now.workspaceName} cannot reach machines any more`
      return undefined
    }),
    Effect.catchAll((e) => Effect.succeed(e._tag === "AccessError" ? e.message : undefined))
  )

const connectionVerdict = (ctx: CoreContext, conn: Connection): Effect.Effect<Verdict> =>
  ctx.authenticate(conn.credential).pipe(
    Effect.map((now): Verdict =>
      now.workspaceId === conn.workspaceId ? undefined : `the machine moves to workspace ${now.workspaceName}`
    ),
    Effect.catchAll((e) =>
      Effect.succeed(e._tag === "AccessError" ? "the login the agent connected with is no longer valid" : undefined)
    )
  )

/** Ends what `conn` holds for callers whose verdict says so. */
const endHolders = (conn: Connection, verdictOf: (holder: Caller) => Effect.Effect<Verdict>) =>
  Effect.gen(function* () {
    for (const session of conn.sessions.values()) {
      if (session.holder === undefined || session.exited) continue
      const reason = yield* verdictOf(session.holder)
      if (reason === undefined) continue
      session.exited = true
      yield* Queue.offer(session.items, {
        _tag: "Lost",
        error: new AccessError({ reason: "PermissionDenied", detail: reason })
      })
      yield* conn.send({ _tag: "SessionClose", sessionId: session.id, reason })
    }
    for (const pty of conn.ptys.values())
      for (const viewer of pty.viewers) {
        if (viewer.holder === undefined || viewer.cutWith !== undefined) continue
        const reason = yield* verdictOf(viewer.holder)
        if (reason === undefined) continue
        const end = { exitCode: 0, reason, cut: true } as const
        viewer.cutWith = end
        yield* Deferred.succeed(viewer.cut, end)
      }
  })

/**
 * What a person left behind without a token of theirs, on a relay with accounts: the share links they minted (the
 * cabinet's "Connect" among them) and the interactive sessions they opened. When the person lost their access to
 * the workspace (removed, disabled, demoted to viewer), the link's guests end as on revocation and the person's
 * shells end at the agent, processes and all (`guestEnd.ts`). Each (person, workspace) is checked once per sweep.
 */
const sweepPeople = (ctx: CoreContext, personAccess: PersonAccess) =>
  Effect.gen(function* () {
    const verdicts = new Map<string, Verdict>()
    const accessOf = (email: string, workspaceId: string, workspaceName: string) => {
      const key = `${email}|${workspaceId}`
      return verdicts.has(key)
        ? Effect.succeed(verdicts.get(key))
        : personAccess(email, workspaceId, workspaceName).pipe(
            Effect.catchAll(() => Effect.succeed<Verdict>(undefined)),
            Effect.tap((v) => Effect.sync(() => verdicts.set(key, v)))
          )
    }
    // A workspace's name for the messages, read once per sweep and only for workspaces with a person's shell.
    const names = new Map<string, string>()
    const nameOf = (id: WorkspaceId) =>
      names.has(id)
        ? Effect.succeed(names.get(id)!)
        : ctx.store.getWorkspaceById(id).pipe(
            Effect.map((w): string => w.name),
            Effect.orElseSucceed(() => id),
            Effect.tap((name) => Effect.sync(() => names.set(id, name)))
          )
    const links = new Set<string>()
    for (const conn of ctx.registry.all()) {
      for (const session of conn.sessions.values()) if (session.shareId !== undefined) links.add(session.shareId)
      for (const pty of conn.ptys.values()) {
        if (pty.shareId !== undefined) links.add(pty.shareId)
        for (const viewer of pty.viewers) if (viewer.shareId !== undefined) links.add(viewer.shareId)
        if (!isPersonPrincipal(pty.owner) || pty.ended !== undefined || pty.closing !== undefined) continue
        const why = yield* accessOf(pty.owner, conn.workspaceId, yield* nameOf(conn.workspaceId))
        if (why !== undefined)
          yield* GuestEnd.endPersonSessions(conn, pty.owner, `${pty.owner}, who opened this session, ${why}`)
      }
    }
    for (const linkId of links) {
      const grant = yield* Effect.either(ctx.shares.check(linkId))
      if (grant._tag === "Left" || !isPersonPrincipal(grant.right.creator)) continue
      const why = yield* accessOf(grant.right.creator, grant.right.workspaceId, grant.right.workspaceName)
      if (why === undefined) continue
      const reason = `this share link stopped working: ${grant.right.creator}, who made it, ${why}`
      yield* GuestEnd.endGuestSessions(
        ctx.registry,
        linkId,
        reason,
        new AccessError({ reason: "PermissionDenied", detail: reason })
      )
    }
  })

/** One sweep over every live connection. */
export const sweep = (ctx: CoreContext) =>
  Effect.gen(function* () {
    const verdicts = new Map<string, Verdict>()
    const verdictOf = (holder: Caller) => {
      const key = `${Redacted.value(holder.credential)}|${holder.workspaceId}`
      return verdicts.has(key)
        ? Effect.succeed(verdicts.get(key))
        : Effect.tap(holderVerdict(ctx, holder), (v) => Effect.sync(() => verdicts.set(key, v)))
    }
    for (const conn of ctx.registry.all()) {
      if (looksLikeAccessToken(Redacted.value(conn.credential))) {
        const reason = yield* connectionVerdict(ctx, conn)
        if (reason !== undefined) {
          yield* conn.close(reason)
          continue
        }
      }
      // An idle agent holds nothing to end: skipped without building the effect (thousands per sweep).
      if (conn.sessions.size > 0 || conn.ptys.size > 0) yield* endHolders(conn, verdictOf)
    }
    const personAccess = personAccessOf(ctx.authenticate)
    if (personAccess !== undefined) yield* sweepPeople(ctx, personAccess)
  }).pipe(Effect.withSpan("RelayCore.credentialSweep"))

/** Sweeps every `interval` for as long as the enclosing scope lives. */
export const run = (ctx: CoreContext, interval: Duration.DurationInput) =>
  sweep(ctx).pipe(Effect.repeat(Schedule.spaced(interval)), Effect.forkScoped, Effect.asVoid)
