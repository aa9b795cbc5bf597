/**
 * The relay's `ShareService` over its `RelayStore` (memory, SQLite or PostgreSQL: the in-memory twin is this
 * layer over `RelayStore.layerMemory`). Tokens are signed with the store's current signing key
 * (`share/ShareTokens.ts`); the store keeps the link record and its audit events, never the token. Time comes
 * from `Clock`.
 *
 * Validation order: token shape and signature (nothing is looked up for garbage but the signing keys), signing
 * key not retired, expiry, then the record: present, claims equal to the record, not revoked, not expired, the
 * workspace's key generation unchanged, the machine still in the workspace. Failures of a link whose signature
 * checked out are audited (`denied` with the message, once per link per minute; and `expired` once). Guests' uses
 * are written in batches by one fiber (`share/useWrites.ts`), for as long as the layer's scope lives.
 */
import type { MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import { formatInstant, ShareError } from "@cmdop/domain/ShareError"
import { ShareLink } from "@cmdop/domain/ShareLink"
import { type ShareGrant, ShareService } from "@cmdop/domain/ShareService"
import * as ShareTtl from "@cmdop/domain/ShareTtl"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { type ShareLinkRecord, type SigningKey, toShareLink } from "../store/records.js"
import type { RelayStoreError } from "../store/RelayStoreError.js"
import { newId } from "../store/secrets.js"
import { RelayStore } from "../store/service.js"
import { RefusalAudit } from "./refusalAudit.js"
import * as RefusalCache from "./refusalCache.js"
import * as ShareTokens from "./ShareTokens.js"
import * as UseWrites from "./useWrites.js"

/** A store failure: nothing was decided. The store's messages never hold keys or tokens. */
const unavailable = (error: RelayStoreError) => new ShareError({ reason: "Unavailable", detail: error.message })

/** What the service's operations share, over one store. */
const makeDeps = (store: RelayStore["Type"]) => {
  const orUnavailable = <A>(effect: Effect.Effect<A, RelayStoreError>) => Effect.mapError(effect, unavailable)

  /** The current signing key, created when there is none (first start, or every key retired). */
  const currentKey: Effect.Effect<SigningKey, ShareError> = orUnavailable(
    Effect.flatMap(
      store.currentSigningKey,
      Option.match({ onSome: Effect.succeed, onNone: () => store.addSigningKey(ShareTokens.generateKey()) })
    )
  )

  /** Audit writes never change the answer: a failure is logged and the call goes on. */
  const audit = (effect: Effect.Effect<unknown, RelayStoreError>) =>
    Effect.asVoid(
      Effect.catchAll(effect, (error) => Effect.logWarning(`share link audit not recorded: ${error.message}`))
    )

  /** Records `expired` for the link unless it was already. */
  const noteExpiry = (link: ShareLinkRecord | ShareLink, now: number) =>
    link.expiresAt === undefined || now < link.expiresAt || link.events.some((e) => e.kind === "expired")
      ? Effect.succeed(false)
      : store.markShareExpired(link.id, { detail: `expired at ${formatInstant(link.expiresAt)}`, at: link.expiresAt })

  const refusals = new RefusalAudit()

  /**
   * Audits a refusal of a link whose signature checked out: `expired` once if it is, and `denied` with why — at
   * most once per link per interval (`refusalAudit.ts`), so replaying a dead token cannot flood the store.
   */
  const deny = (link: ShareLinkRecord, error: ShareError, now: number) =>
    Effect.suspend(() => {
      const detail = refusals.admit(link.id, error.message, now)
      return detail === undefined
        ? Effect.void
        : audit(
            Effect.zipRight(noteExpiry(link, now), store.addShareEvent(link.id, { kind: "denied", detail, at: now }))
          )
    }).pipe(Effect.zipRight(Effect.fail(error)))

  const linkOf = (workspaceId: string, linkId: string) =>
    Effect.flatMap(orUnavailable(store.getShareLink(linkId)), (found) =>
      Option.isSome(found) && found.value.workspaceId === workspaceId
        ? Effect.succeed(found.value)
        : Effect.fail(new ShareError({ reason: "NotFound", subject: linkId }))
    )

  /** The links as callers see them, after recording `expired` for any first seen expired now. */
  const withExpiries = <A extends ShareLinkRecord | ReadonlyArray<ShareLinkRecord>>(
    links: A,
    now: number,
    reload: Effect.Effect<A, ShareError>
  ): Effect.Effect<A, ShareError> =>
    Effect.flatMap(
      orUnavailable(
        Effect.forEach(Array.isArray(links) ? links : [links as ShareLinkRecord], (l) => noteExpiry(l, now))
      ),
      (marked) => (marked.some((m) => m) ? reload : Effect.succeed(links))
    )
  return { store, orUnavailable, currentKey, deny, linkOf, withExpiries }
}
type Deps = ReturnType<typeof makeDeps>

/** Mints a link: checks the creator, signs a token with the current key, stores the record (never the token). */
const mint =
  ({ currentKey, orUnavailable, store }: Deps): ShareService["Type"]["mint"] =>
  (input) =>
    Effect.gen(function* () {
      const { creator } = input
      if (creator.kind === "guest")
        return yield* new ShareError({
          reason: "NotAllowed",
          detail: "a share link cannot mint share links; use a workspace API key"
        })
      if (creator.workspaceId !== input.machine.workspaceId)
        return yield* new ShareError({
          reason: "NotAllowed",
          detail: "a share link can only be minted for a machine of your own workspace"
        })
      const ttl = yield* ShareTtl.roundUp(input.ttlSeconds)
      const workspace = yield* store.getWorkspaceById(creator.workspaceId as WorkspaceId).pipe(
        Effect.catchIf(
          (e) => e.reason === "WorkspaceNotFound",
          () =>
            new ShareError({ reason: "NotAllowed", detail: `workspace ${creator.workspaceId} is not on this relay` })
        ),
        Effect.mapError((e) => (e._tag === "ShareError" ? e : unavailable(e)))
      )
      const machine = yield* store.getMachine(input.machine.id as MachineId).pipe(
        Effect.flatMap((m) =>
          m.workspaceId === workspace.id ? Effect.succeed(m) : new ShareError({ reason: "MachineGone" })
        ),
        Effect.catchIf(
          (e) => e._tag === "RelayStoreError" && e.reason === "MachineNotFound",
          () => new ShareError({ reason: "MachineGone" })
        ),
        Effect.mapError((e) => (e._tag === "ShareError" ? e : unavailable(e)))
      )
      const key = yield* currentKey
      const now = yield* Clock.currentTimeMillis
      const iat = Math.floor(now / 1000)
      const exp = ttl === 0 ? undefined : iat + ttl
      const id = newId("sl")
      const token = yield* ShareTokens.sign(key, {
        jti: id,
        sub: machine.id,
        wsid: workspace.id,
        gen: workspace.keyGeneration,
        iat,
        ...(exp === undefined ? {} : { exp })
      })
      const record = yield* orUnavailable(
        store.createShareLink(
          {
            id,
            workspaceId: workspace.id,
            machineId: machine.id,
            machineHostname: machine.hostname,
            creator: creator.principal,
            createdAt: now,
            keyGeneration: workspace.keyGeneration,
            signingKid: key.kid,
            ...(exp === undefined ? {} : { expiresAt: exp * 1000 }),
            ...(input.sessionId === undefined ? {} : { sessionId: input.sessionId })
          },
          `created by ${creator.principal} (${creator.kind}), lifetime ${ShareTtl.format(ttl)}${
            input.sessionId === undefined ? "" : `, session ${input.sessionId} only`
          }`
        )
      )
      return {
        link: toShareLink(record),
        token,
        url: `${input.publicUrl.replace(/\/+$/, "")}/s/${token}`
      }
    })

/** Validates a token in the order the module header gives, auditing refusals of genuine links. */
const validate =
  (deps: Deps): ShareService["Type"]["validate"] =>
  (token) =>
    Effect.gen(function* () {
      const { deny, orUnavailable, store } = deps
      // Garbage is refused before the store is asked anything.
      yield* ShareTokens.inspect(token)
      const now = yield* Clock.currentTimeMillis
      const keys = yield* orUnavailable(store.listSigningKeys)
      const claims = yield* ShareTokens.verify(token, keys, now).pipe(
        // These two are only reported for a genuine token: audit them on its link.
        Effect.tapError((error) =>
          (error.reason === "Expired" || error.reason === "SigningKeyRetired") && error.subject !== undefined
            ? Effect.flatMap(
                Effect.orElseSucceed(store.getShareLink(error.subject), () => Option.none<ShareLinkRecord>()),
                Option.match({ onNone: () => Effect.void, onSome: (link) => Effect.ignore(deny(link, error, now)) })
              )
            : Effect.void
        )
      )
      const found = yield* orUnavailable(store.getShareLink(claims.jti))
      if (Option.isNone(found)) return yield* new ShareError({ reason: "NotFound", subject: claims.jti })
      const link = found.value
      if (
        link.workspaceId !== claims.wsid ||
        link.machineId !== claims.sub ||
        link.keyGeneration !== claims.gen ||
        link.expiresAt !== (claims.exp === undefined ? undefined : claims.exp * 1000)
      )
        return yield* deny(link, new ShareError({ reason: "BadSignature" }), now)
      return yield* checkRecord(deps, link, now, (error) => deny(link, error, now))
    })

/**
 * The checks of a link's record (after its token's): not revoked, not expired, its workspace's key generation
 * unchanged, its machine still in the workspace; the grant when all hold. A refusal goes through `refuse`.
 */
const checkRecord = (
  { store }: Deps,
  link: ShareLinkRecord,
  now: number,
  refuse: (error: ShareError) => Effect.Effect<never, ShareError>
): Effect.Effect<ShareGrant, ShareError> =>
  Effect.gen(function* () {
    if (link.revokedAt !== undefined)
      return yield* refuse(new ShareError({ reason: "Revoked", subject: link.id, at: link.revokedAt }))
    if (link.expiresAt !== undefined && now >= link.expiresAt)
      return yield* refuse(new ShareError({ reason: "Expired", subject: link.id, at: link.expiresAt }))
    const workspace = yield* store.getWorkspaceById(link.workspaceId as WorkspaceId).pipe(
      Effect.catchIf(
        (e) => e.reason === "WorkspaceNotFound",
        () => refuse(new ShareError({ reason: "NotFound", subject: link.id }))
      ),
      Effect.mapError((e) => (e._tag === "ShareError" ? e : unavailable(e)))
    )
    if (workspace.keyGeneration !== link.keyGeneration)
      return yield* refuse(new ShareError({ reason: "KeyRotated", subject: link.id }))
    const machine = yield* store.getMachine(link.machineId as MachineId).pipe(
      Effect.map(Option.some),
      Effect.catchIf(
        (e) => e.reason === "MachineNotFound",
        () => Effect.succeed(Option.none())
      ),
      Effect.mapError(unavailable)
    )
    if (Option.isNone(machine) || machine.value.workspaceId !== link.workspaceId)
      return yield* refuse(new ShareError({ reason: "MachineGone", subject: link.id }))
    return {
      linkId: link.id,
      workspaceId: link.workspaceId,
      workspaceName: workspace.name,
      machineId: link.machineId,
      machineHostname: machine.value.hostname,
      creator: link.creator,
      ...(link.expiresAt === undefined ? {} : { expiresAt: link.expiresAt }),
      ...(link.sessionId === undefined ? {} : { sessionId: link.sessionId })
    }
  })

/**
 * Whether a link (by id, without its token) would still validate: its record's checks, and its signing key not
 * retired. Nothing is audited: the relay asks this of links whose guests' sessions still run on a machine.
 */
const check =
  (deps: Deps): ShareService["Type"]["check"] =>
  (linkId) =>
    Effect.gen(function* () {
      const { orUnavailable, store } = deps
      const found = yield* orUnavailable(store.getShareLink(linkId))
      if (Option.isNone(found)) return yield* new ShareError({ reason: "NotFound", subject: linkId })
      const link = found.value
      if (link.signingKid !== undefined) {
        const key = (yield* orUnavailable(store.listSigningKeys)).find((k) => k.kid === link.signingKid)
        if (key === undefined || key.retiredAt !== undefined)
          return yield* new ShareError({ reason: "SigningKeyRetired", subject: link.id })
      }
      return yield* checkRecord(deps, link, yield* Clock.currentTimeMillis, Effect.fail)
    })

/** A listed link, marked when the key that signed its token was retired (its token no longer validates). */
const withKeyState = (link: ShareLink, retired: ReadonlySet<string>): ShareLink =>
  link.signingKid !== undefined && retired.has(link.signingKid)
    ? new ShareLink({ ...link, signingKeyRetired: true })
    : link

/**
 * Builds the service on the store in context, creating the first signing key when the store has none; its writer of
 * guests' uses lives as long as the scope.
 */
export const make: Effect.Effect<ShareService["Type"], never, RelayStore | Scope.Scope> = Effect.gen(function* () {
  const deps = makeDeps(yield* RelayStore)
  const { currentKey, linkOf, orUnavailable, store, withExpiries } = deps

  const listPage: ShareService["Type"]["listPage"] = (workspaceId, machineId, page) => {
    const load = orUnavailable(
      store.listShareLinks(workspaceId as WorkspaceId, machineId as MachineId | undefined, page)
    )
    return Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const { links: read, next } = yield* load
      // Recording a first-seen expiry adds an event: the page is read again (same cursor, so the same links).
      const links = yield* withExpiries(
        read,
        now,
        Effect.map(load, (p) => p.links)
      )
      const retired = new Set(
        (yield* orUnavailable(store.listSigningKeys)).filter((k) => k.retiredAt !== undefined).map((k) => k.kid)
      )
      return { links: links.map((l) => withKeyState(toShareLink(l), retired)), ...(next === undefined ? {} : { next }) }
    })
  }

  const list: ShareService["Type"]["list"] = (workspaceId, machineId) => {
    const load = orUnavailable(
      Effect.map(store.listShareLinks(workspaceId as WorkspaceId, machineId as MachineId | undefined), (p) => p.links)
    )
    return Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const links = yield* withExpiries(yield* load, now, load)
      const retired = new Set(
        (yield* orUnavailable(store.listSigningKeys)).filter((k) => k.retiredAt !== undefined).map((k) => k.kid)
      )
      return links.map((l) => withKeyState(toShareLink(l), retired))
    })
  }

  const get: ShareService["Type"]["get"] = (workspaceId, linkId) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const load = linkOf(workspaceId, linkId)
      return toShareLink(yield* withExpiries(yield* load, now, load))
    })

  const revoke: ShareService["Type"]["revoke"] = (workspaceId, linkId) =>
    Effect.gen(function* () {
      const link = yield* linkOf(workspaceId, linkId)
      const now = yield* Clock.currentTimeMillis
      const revoked = toShareLink(yield* orUnavailable(store.revokeShareLink(link.id, now, "revoked")))
      return link.revokedAt === undefined ? revoked : new ShareLink({ ...revoked, alreadyRevoked: true })
    })

  const uses = yield* UseWrites.make(store)
  const recordUse: ShareService["Type"]["recordUse"] = (linkId, detail) =>
    Effect.flatMap(Clock.currentTimeMillis, (at) => uses.record({ linkId, at, detail }))

  const rotateSigningKey: ShareService["Type"]["rotateSigningKey"] = Effect.gen(function* () {
    const previous = Option.getOrUndefined(yield* orUnavailable(store.currentSigningKey))
    const now = yield* Clock.currentTimeMillis
    // The store's current key is the newest, ties broken by the greater kid: a key created in the same
    // millisecond as the previous one must sort after it.
    const key = ShareTokens.generateKey(previous !== undefined && previous.createdAt >= now ? previous.kid : undefined)
    const added = yield* orUnavailable(store.addSigningKey(key))
    return { current: added.kid, ...(previous === undefined ? {} : { previous: previous.kid }) }
  })

  const retireSigningKey: ShareService["Type"]["retireSigningKey"] = (kid) =>
    store
      .retireSigningKey(kid)
      .pipe(
        Effect.mapError((e) =>
          e.reason === "SigningKeyNotFound"
            ? new ShareError({ reason: "NotFound", detail: `no share-link signing key "${kid}" exists on this relay` })
            : unavailable(e)
        )
      )

  yield* Effect.catchAll(currentKey, (error) =>
    Effect.logWarning(`no share-link signing key yet (${error.message}); the first mint creates one`)
  )

  const span =
    <Args extends ReadonlyArray<unknown>, A, E>(
      name: string,
      f: (...args: Args) => Effect.Effect<A, E>
    ): ((...args: Args) => Effect.Effect<A, E>) =>
    (...args) =>
      Effect.withSpan(f(...args), `ShareService.${name}`)

  return ShareService.of({
    mint: span("mint", mint(deps)),
    validate: span("validate", RefusalCache.cached(validate(deps))),
    check: span("check", check(deps)),
    recordUse: span("recordUse", recordUse),
    list: span("list", list),
    listPage: span("listPage", listPage),
    get: span("get", get),
    revoke: span("revoke", revoke),
    rotateSigningKey: Effect.withSpan(rotateSigningKey, "ShareService.rotateSigningKey"),
    retireSigningKey: span("retireSigningKey", retireSigningKey)
  })
})

/** The `ShareService` over the `RelayStore` in context. */
export const layer: Layer.Layer<ShareService, never, RelayStore> = Layer.scoped(ShareService, make)
