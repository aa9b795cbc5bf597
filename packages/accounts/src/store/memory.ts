/**
 * The in-memory `AccountStore`: one immutable state in a `Ref`, every change computed under a lock and written
 * only when the whole operation succeeds, so a failed call changes nothing. For tests and embedding.
 */
import type { WorkspaceId } from "@cmdop/domain/Machine"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import { AccountStoreError } from "./AccountStoreError.js"
import {
  AuditEvent,
  compare,
  DeviceCodeRecord,
  DomainRule,
  Grant,
  Membership,
  type NewTokenPair,
  User,
  type UserId,
  userOrder,
  type WebSession
} from "./records.js"
import { AccountStore, type RefreshResult } from "./service.js"
import * as Transitions from "./transitions.js"
import { newId } from "../Secrets.js"

interface LinkRow {
  readonly tokenHash: string
  readonly userId: UserId
  readonly expiresAt: number
  readonly usedAt: number | undefined
}

interface TokenRow {
  readonly hash: string
  readonly kind: "access" | "refresh"
  readonly grantId: string
  readonly expiresAt: number
  readonly consumedAt: number | undefined
}

interface State {
  readonly users: ReadonlyArray<User>
  readonly passwords: ReadonlyArray<readonly [UserId, Redacted.Redacted<string>]>
  readonly memberships: ReadonlyArray<Membership>
  readonly links: ReadonlyArray<LinkRow>
  readonly sessions: ReadonlyArray<readonly [string, WebSession]>
  readonly codes: ReadonlyArray<DeviceCodeRecord>
  readonly grants: ReadonlyArray<Grant>
  readonly tokens: ReadonlyArray<TokenRow>
  readonly audit: ReadonlyArray<AuditEvent>
  readonly domainRules: ReadonlyArray<DomainRule>
  readonly identities: ReadonlyArray<{ readonly issuer: string; readonly subject: string; readonly userId: UserId }>
}

const empty: State = {
  users: [],
  passwords: [],
  memberships: [],
  links: [],
  sessions: [],
  codes: [],
  grants: [],
  tokens: [],
  audit: [],
  domainRules: [],
  identities: []
}

const fail = (reason: AccountStoreError["reason"], subject: string) =>
  Effect.fail(new AccountStoreError({ reason, subject }))

const tokenRows = (grantId: string, t: NewTokenPair): ReadonlyArray<TokenRow> => [
  { hash: t.accessHash, kind: "access", grantId, expiresAt: t.accessExpiresAt, consumedAt: undefined },
  { hash: t.refreshHash, kind: "refresh", grantId, expiresAt: t.refreshExpiresAt, consumedAt: undefined }
]

const revokeGrant = (s: State, grantId: string, at: number): State => ({
  ...s,
  grants: s.grants.map((g) => (g.id === grantId && g.revokedAt === undefined ? new Grant({ ...g, revokedAt: at }) : g))
})

/** Builds an in-memory store. */
export const make: Effect.Effect<AccountStore["Type"]> = Effect.gen(function* () {
  const state = yield* Ref.make(empty)
  const lock = yield* Effect.makeSemaphore(1)
  const read = Ref.get(state)
  /** Runs `f` on the current state under the lock; its new state is stored only when it succeeds. */
  const update = <A>(f: (s: State) => Effect.Effect<readonly [A, State], AccountStoreError>) =>
    lock.withPermits(1)(Effect.flatMap(read, f).pipe(Effect.flatMap(([a, next]) => Effect.as(Ref.set(state, next), a))))

  const userIn = (s: State, id: UserId) => {
    const user = s.users.find((u) => u.id === id)
    return user === undefined ? fail("UserNotFound", id) : Effect.succeed(user)
  }
  const replaceUser = (s: State, user: User): State => ({
    ...s,
    users: s.users.map((u) => (u.id === user.id ? user : u))
  })
  const membershipIn = (s: State, userId: UserId, workspaceId: WorkspaceId | undefined) =>
    s.memberships.find((m) => m.userId === userId && m.workspaceId === workspaceId)
  const grantIn = (s: State, id: string) => s.grants.find((g) => g.id === id)

  return AccountStore.of({
    createUser: (email) =>
      update((s) =>
        Effect.gen(function* () {
          if (s.users.some((u) => u.email === email)) return yield* fail("UserExists", email)
          const user = new User({
            id: newId("usr") as UserId,
            email,
            createdAt: yield* Clock.currentTimeMillis,
            disabled: false
          })
          return [user, { ...s, users: [...s.users, user] }] as const
        })
      ),
    getUser: (id) => Effect.flatMap(read, (s) => userIn(s, id)),
    findUserByEmail: (email) => Effect.map(read, (s) => Option.fromNullable(s.users.find((u) => u.email === email))),
    setUserDisabled: (id, disabled) =>
      update((s) =>
        Effect.map(userIn(s, id), (found) => {
          const user = new User({ ...found, disabled })
          return [user, replaceUser(s, user)] as const
        })
      ),
    setPasswordHash: (id, hash) =>
      update((s) =>
        Effect.as(userIn(s, id), [
          undefined,
          { ...s, passwords: [...s.passwords.filter(([u]) => u !== id), [id, hash] as const] }
        ] as const)
      ),
    getPasswordHash: (id) =>
      Effect.flatMap(read, (s) =>
        Effect.as(userIn(s, id), Option.fromNullable(s.passwords.find(([u]) => u === id)?.[1]))
      ),
    setActiveWorkspace: (id, workspaceId) =>
      update((s) =>
        Effect.flatMap(userIn(s, id), (found) => {
          if (membershipIn(s, id, workspaceId) === undefined) return fail("NotAMember", workspaceId)
          const user = new User({ ...found, activeWorkspaceId: workspaceId })
          return Effect.succeed([user, replaceUser(s, user)] as const)
        })
      ),

    putMembership: (userId, workspaceId, role) =>
      update((s) =>
        Effect.gen(function* () {
          const user = yield* userIn(s, userId)
          const existing = membershipIn(s, userId, workspaceId)
          const membership = new Membership({
            userId,
            workspaceId,
            role,
            createdAt: existing?.createdAt ?? (yield* Clock.currentTimeMillis)
          })
          const others = s.memberships.filter((m) => m !== existing)
          const next = { ...s, memberships: [...others, membership] }
          return [
            membership,
            user.activeWorkspaceId === undefined
              ? replaceUser(next, new User({ ...user, activeWorkspaceId: workspaceId }))
              : next
          ] as const
        })
      ),
    removeMembership: (userId, workspaceId) =>
      update((s) => {
        const existing = membershipIn(s, userId, workspaceId)
        if (existing === undefined) return fail("NotAMember", workspaceId)
        const next = { ...s, memberships: s.memberships.filter((m) => m !== existing) }
        const user = s.users.find((u) => u.id === userId)
        return Effect.succeed([
          undefined,
          user !== undefined && user.activeWorkspaceId === workspaceId
            ? replaceUser(next, new User({ ...user, activeWorkspaceId: undefined }))
            : next
        ] as const)
      }),
    getMembership: (userId, workspaceId) =>
      Effect.map(read, (s) => Option.fromNullable(membershipIn(s, userId, workspaceId))),
    listMemberships: (userId) =>
      Effect.map(read, (s) =>
        s.memberships.filter((m) => m.userId === userId).sort((a, b) => compare(a.workspaceId, b.workspaceId))
      ),
    listMembers: (workspaceId) =>
      Effect.map(read, (s) =>
        s.memberships
          .filter((m) => m.workspaceId === workspaceId)
          .flatMap((membership) => {
            const user = s.users.find((u) => u.id === membership.userId)
            return user === undefined ? [] : [{ user, membership }]
          })
          .sort((a, b) => userOrder(a.user, b.user))
      ),

    createSignInLink: (link) =>
      update((s) =>
        Effect.succeed([undefined, { ...s, links: [...s.links, { ...link, usedAt: undefined }] }] as const)
      ),
    redeemSignInLink: (tokenHash, at) =>
      update((s) => {
        const link = s.links.find((l) => l.tokenHash === tokenHash)
        if (link === undefined) return fail("SignInLinkNotFound", "sign-in link")
        const verdict = Transitions.redeem(link, at)
        if (verdict === "used") return fail("SignInLinkUsed", "sign-in link")
        if (verdict === "expired") return fail("SignInLinkExpired", "sign-in link")
        // The person's other unused links end with it: a password is set once per link, not once per link issued.
        const links = s.links.map((l) =>
          l.userId === link.userId && l.usedAt === undefined ? { ...l, usedAt: at } : l
        )
        return Effect.succeed([link.userId, { ...s, links }] as const)
      }),

    createWebSession: (idHash, session) =>
      update((s) =>
        Effect.succeed([undefined, { ...s, sessions: [...s.sessions, [idHash, session] as const] }] as const)
      ),
    getWebSession: (idHash) =>
      Effect.map(read, (s) => Option.fromNullable(s.sessions.find(([h]) => h === idHash)?.[1])),
    deleteWebSession: (idHash) =>
      update((s) => Effect.succeed([undefined, { ...s, sessions: s.sessions.filter(([h]) => h !== idHash) }] as const)),
    deleteUserSessions: (userId) =>
      update((s) =>
        Effect.succeed([undefined, { ...s, sessions: s.sessions.filter(([, v]) => v.userId !== userId) }] as const)
      ),

    createDeviceCode: (code) =>
      update((s) => Effect.succeed([undefined, { ...s, codes: [...s.codes, code] }] as const)),
    findDeviceCodeByUserCode: (userCodeHash) =>
      Effect.map(read, (s) => Option.fromNullable(s.codes.find((c) => c.userCodeHash === userCodeHash))),
    decideDeviceCode: (userCodeHash, at, decision) =>
      update((s) => {
        const code = s.codes.find((c) => c.userCodeHash === userCodeHash)
        if (code === undefined || at >= code.expiresAt) return fail("DeviceCodeNotFound", "device code")
        if (code.status !== "pending") return fail("DeviceCodeNotPending", "device code")
        const decided = new DeviceCodeRecord({
          ...code,
          status: decision.approve ? "approved" : "denied",
          userId: decision.userId,
          ...(decision.approve && decision.workspaceId !== undefined ? { workspaceId: decision.workspaceId } : {})
        })
        return Effect.succeed([decided, { ...s, codes: s.codes.map((c) => (c === code ? decided : c)) }] as const)
      }),
    pollDeviceCode: (deviceCodeHash, at, tokens) =>
      update((s) => {
        const code = s.codes.find((c) => c.deviceCodeHash === deviceCodeHash)
        if (code === undefined) return Effect.succeed([Option.none(), s] as const)
        const { next, outcome } = Transitions.poll(code, at)
        const stored = { ...s, codes: s.codes.map((c) => (c === code ? next : c)) }
        if (outcome === "reused" && code.grantId !== undefined) {
          const revoked = revokeGrant(stored, code.grantId, at)
          return Effect.succeed([
            Option.some({ outcome, code: next, grant: grantIn(revoked, code.grantId) }),
            revoked
          ] as const)
        }
        if (outcome !== "issued")
          return Effect.succeed([Option.some({ outcome, code: next, grant: undefined }), stored] as const)
        return Effect.map(Transitions.approver(code), (userId) => {
          const grant = new Grant({
            id: newId("grt"),
            userId,
            clientId: code.clientId,
            scope: code.scope,
            ...(code.workspaceId === undefined ? {} : { workspaceId: code.workspaceId }),
            createdAt: at
          })
          const consumed = new DeviceCodeRecord({ ...next, grantId: grant.id })
          return [
            Option.some({ outcome, code: consumed, grant }),
            {
              ...stored,
              codes: s.codes.map((c) => (c === code ? consumed : c)),
              grants: [...s.grants, grant],
              tokens: [...s.tokens, ...tokenRows(grant.id, tokens)]
            }
          ] as const
        })
      }),

    rotateRefreshToken: (refreshHash, at, tokens) =>
      update<RefreshResult>((s) => {
        const token = s.tokens.find((t) => t.hash === refreshHash && t.kind === "refresh")
        const grant = token && grantIn(s, token.grantId)
        if (token === undefined || grant === undefined)
          return Effect.succeed([{ _tag: "invalid" } as const, s] as const)
        const verdict = Transitions.refresh({ ...token, grantRevoked: grant.revokedAt !== undefined }, at)
        if (verdict === "invalid") return Effect.succeed([{ _tag: "invalid" } as const, s] as const)
        if (verdict === "reused") {
          const revoked = revokeGrant(s, grant.id, at)
          return Effect.succeed([{ _tag: "reused", grant: grantIn(revoked, grant.id)! } as const, revoked] as const)
        }
        const consumed = s.tokens.map((t) => (t === token ? { ...t, consumedAt: at } : t))
        return Effect.succeed([
          { _tag: "rotated", grant } as const,
          { ...s, tokens: [...consumed, ...tokenRows(grant.id, tokens)] }
        ] as const)
      }),
    revokeToken: (tokenHash, at) =>
      update((s) => {
        const token = s.tokens.find((t) => t.hash === tokenHash)
        if (token === undefined) return Effect.succeed([Option.none(), s] as const)
        const next = revokeGrant(s, token.grantId, at)
        return Effect.succeed([Option.fromNullable(grantIn(next, token.grantId)), next] as const)
      }),
    revokeUserGrants: (userId, at) =>
      update((s) =>
        Effect.succeed([
          undefined,
          s.grants.filter((g) => g.userId === userId).reduce((acc, g) => revokeGrant(acc, g.id, at), s)
        ] as const)
      ),
    listGrants: (userId) =>
      Effect.map(read, (s) =>
        s.grants.filter((g) => g.userId === userId).sort((a, b) => a.createdAt - b.createdAt || compare(a.id, b.id))
      ),
    lookupAccessToken: (accessHash, workspaceId) =>
      Effect.map(read, (s) => {
        const token = s.tokens.find((t) => t.hash === accessHash && t.kind === "access")
        const grant = token && grantIn(s, token.grantId)
        const user = grant && s.users.find((u) => u.id === grant.userId)
        if (token === undefined || grant === undefined || user === undefined) return Option.none()
        const target = workspaceId ?? user.activeWorkspaceId
        return Option.some({
          expiresAt: token.expiresAt,
          grant,
          user,
          workspaceId: target,
          membership: membershipIn(s, user.id, target)
        })
      }),

    putDomainRule: (workspaceId, domain, role) =>
      update((s) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const existing = s.domainRules.find((r) => r.workspaceId === workspaceId && r.domain === domain)
          const rule = new DomainRule({ workspaceId, domain, role, createdAt: existing?.createdAt ?? now })
          return [rule, { ...s, domainRules: [...s.domainRules.filter((r) => r !== existing), rule] }] as const
        })
      ),
    removeDomainRule: (workspaceId, domain) =>
      update((s) =>
        Effect.succeed([
          undefined,
          { ...s, domainRules: s.domainRules.filter((r) => !(r.workspaceId === workspaceId && r.domain === domain)) }
        ] as const)
      ),
    listDomainRules: (workspaceId) =>
      Effect.map(read, (s) =>
        s.domainRules.filter((r) => r.workspaceId === workspaceId).sort((a, b) => compare(a.domain, b.domain))
      ),
    rulesForDomain: (domain) =>
      Effect.map(read, (s) =>
        s.domainRules.filter((r) => r.domain === domain).sort((a, b) => compare(a.workspaceId, b.workspaceId))
      ),
    findSsoIdentity: (issuer, subject) =>
      Effect.map(read, (s) =>
        Option.fromNullable(s.identities.find((i) => i.issuer === issuer && i.subject === subject)?.userId)
      ),
    linkSsoIdentity: (issuer, subject, userId) =>
      update((s) => {
        const bySubject = s.identities.find((i) => i.issuer === issuer && i.subject === subject)
        const byUser = s.identities.find((i) => i.issuer === issuer && i.userId === userId)
        if (bySubject !== undefined && bySubject.userId === userId) return Effect.succeed([undefined, s] as const)
        if (bySubject !== undefined || byUser !== undefined) return fail("SsoIdentityConflict", issuer)
        if (!s.users.some((u) => u.id === userId)) return fail("UserNotFound", userId)
        return Effect.succeed([
          undefined,
          { ...s, identities: [...s.identities, { issuer, subject, userId }] }
        ] as const)
      }),

    purgeExpired: (now) =>
      update((s) => {
        const next: State = {
          ...s,
          sessions: s.sessions.filter(([, session]) => session.expiresAt > now),
          links: s.links.filter((l) => l.expiresAt > now),
          codes: s.codes.filter((c) => c.expiresAt > now),
          tokens: s.tokens.filter((t) => t.expiresAt > now)
        }
        const gone =
          s.sessions.length +
          s.links.length +
          s.codes.length +
          s.tokens.length -
          (next.sessions.length + next.links.length + next.codes.length + next.tokens.length)
        return Effect.succeed([gone, next] as const)
      }),

    appendAudit: (event) =>
      update((s) => Effect.succeed([undefined, { ...s, audit: [...s.audit, new AuditEvent(event)] }] as const)),
    listAudit: (filter) =>
      Effect.map(read, (s) =>
        s.audit
          .map((event, seq) => ({ event, seq }))
          .filter(
            ({ event }) =>
              (filter.workspaceId === undefined || event.workspaceId === filter.workspaceId) &&
              (filter.userId === undefined || event.actor === filter.userId || event.subject === filter.userId)
          )
          .sort((a, b) => a.event.at - b.event.at || a.seq - b.seq)
          .map(({ event }) => event)
      )
  })
})
