/**
 * The behaviour every `AccountStore` layer must have, as one suite run once per implementation. Each test makes
 * its own users with random emails and its own workspace ids, because a SQL layer is shared by every test of a
 * file. Times are passed explicitly where the store takes them, so expiry is exercised without waiting.
 */
import { WorkspaceId } from "@cmdop/domain/Machine"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"
import { Email } from "../Email.js"
import type { AccountStoreError } from "./AccountStoreError.js"
import { DeviceCodeRecord, type NewTokenPair, WebSession } from "./records.js"
import { AccountStore } from "./service.js"

const suffix = () => randomBytes(5).toString("hex")
const freshEmail = (label = "user") => Email.make(`${label}-${suffix()}@example.com`)
const freshWorkspace = () => WorkspaceId.make(`ws_${suffix()}`)
const freshHash = () => randomBytes(32).toString("hex")
const HOUR = 3_600_000

const pair = (now: number): NewTokenPair => ({
  accessHash: freshHash(),
  accessExpiresAt: now + 72 * HOUR,
  refreshHash: freshHash(),
  refreshExpiresAt: now + 720 * HOUR
})

const pendingCode = (now: number) =>
  new DeviceCodeRecord({
    deviceCodeHash: freshHash(),
    userCodeHash: freshHash(),
    clientId: "cmdop-cli",
    scope: "connect",
    createdAt: now,
    expiresAt: now + 600_000,
    intervalSeconds: 5,
    status: "pending"
  })

/** The failure of `effect`, asserting it has the expected reason. */
const failure = <A>(effect: Effect.Effect<A, AccountStoreError>, reason: AccountStoreError["reason"]) =>
  Effect.map(Effect.flip(effect), (error) => {
    assert.strictEqual(error._tag, "AccountStoreError")
    assert.strictEqual(error.reason, reason, error.message)
    return error
  })

const some = <A>(option: Option.Option<A>): A => {
  assert.isTrue(Option.isSome(option), "expected Some, got None")
  return Option.getOrThrow(option)
}

/** A user who is a member of a fresh workspace, and an approved device code collected into a grant. */
const signedInGrant = Effect.gen(function* () {
  const store = yield* AccountStore
  const user = yield* store.createUser(freshEmail("grant"))
  const workspaceId = freshWorkspace()
  yield* store.putMembership(user.id, workspaceId, "member")
  const code = pendingCode(1_000)
  yield* store.createDeviceCode(code)
  yield* store.decideDeviceCode(code.userCodeHash, 2_000, { approve: true, userId: user.id, workspaceId })
  const tokens = pair(3_000)
  const polled = some(yield* store.pollDeviceCode(code.deviceCodeHash, 3_000, tokens))
  assert.strictEqual(polled.outcome, "issued")
  return { user, workspaceId, code, tokens, grant: polled.grant! }
})

/** Runs the contract suite against `storeLayer`, which is built once and shared by every test. */
export const accountStoreContract = (name: string, storeLayer: Layer.Layer<AccountStore, unknown>) =>
  layer(storeLayer, { timeout: "30 seconds" })(`AccountStore contract (${name})`, (it) => {
    it.effect("users are created once per email, found by id and email, and disabled", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const email = freshEmail("alice")
        const user = yield* store.createUser(email)
        assert.isTrue(user.id.startsWith("usr_"))
        assert.strictEqual(user.email, email)
        assert.isFalse(user.disabled)
        assert.isUndefined(user.activeWorkspaceId)
        assert.deepStrictEqual(yield* store.getUser(user.id), user)
        assert.deepStrictEqual(some(yield* store.findUserByEmail(email)), user)
        assert.isTrue(Option.isNone(yield* store.findUserByEmail(freshEmail())))
        const dup = yield* failure(store.createUser(email), "UserExists")
        assert.include(dup.message, email)

        const disabled = yield* store.setUserDisabled(user.id, true)
        assert.isTrue(disabled.disabled)
        assert.isTrue((yield* store.getUser(user.id)).disabled)
        assert.isFalse((yield* store.setUserDisabled(user.id, false)).disabled)
        const ghost = "usr_000000000000000000000000" as typeof user.id
        yield* failure(store.getUser(ghost), "UserNotFound")
        yield* failure(store.setUserDisabled(ghost, true), "UserNotFound")
      })
    )

    it.effect("concurrent creates of one email: exactly one wins", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const email = freshEmail("race")
        const results = yield* Effect.all(
          Array.from({ length: 5 }, () => Effect.either(store.createUser(email))),
          { concurrency: "unbounded" }
        )
        assert.lengthOf(
          results.filter((r) => r._tag === "Right"),
          1
        )
        for (const r of results) if (r._tag === "Left") assert.strictEqual(r.left.reason, "UserExists")
      })
    )

    it.effect("password hashes are stored and replaced, never part of the user", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const user = yield* store.createUser(freshEmail("pw"))
        assert.isTrue(Option.isNone(yield* store.getPasswordHash(user.id)))
        yield* store.setPasswordHash(user.id, Redacted.make("$argon2id$v=19$first"))
        yield* store.setPasswordHash(user.id, Redacted.make("$argon2id$v=19$second"))
        assert.strictEqual(Redacted.value(some(yield* store.getPasswordHash(user.id))), "$argon2id$v=19$second")
        assert.notInclude(JSON.stringify(yield* store.getUser(user.id)), "argon2")
        yield* failure(store.getPasswordHash("usr_000000000000000000000001" as typeof user.id), "UserNotFound")
      })
    )

    it.effect("memberships: the first becomes active, roles change, removal clears the active workspace", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const alice = yield* store.createUser(freshEmail("a"))
        const bob = yield* store.createUser(freshEmail("b"))
        const [acme, beta] = [freshWorkspace(), freshWorkspace()]
        const owner = yield* store.putMembership(alice.id, acme, "owner")
        assert.strictEqual(owner.role, "owner")
        assert.strictEqual((yield* store.getUser(alice.id)).activeWorkspaceId, acme)
        yield* store.putMembership(alice.id, beta, "viewer")
        assert.strictEqual((yield* store.getUser(alice.id)).activeWorkspaceId, acme, "a second one does not switch")
        yield* store.putMembership(bob.id, acme, "viewer")
        const promoted = yield* store.putMembership(bob.id, acme, "member")
        assert.strictEqual(promoted.role, "member")
        assert.strictEqual(some(yield* store.getMembership(bob.id, acme)).role, "member")

        const members = yield* store.listMembers(acme)
        assert.deepStrictEqual(
          members.map((m) => [m.user.id, m.membership.role]),
          [alice, bob]
            .sort((x, y) => (x.email < y.email ? -1 : 1))
            .map((u) => [u.id, u.id === alice.id ? "owner" : "member"])
        )
        assert.deepStrictEqual(
          (yield* store.listMemberships(alice.id)).map((m) => m.workspaceId),
          [acme, beta].sort()
        )

        const switched = yield* store.setActiveWorkspace(alice.id, beta)
        assert.strictEqual(switched.activeWorkspaceId, beta)
        yield* failure(store.setActiveWorkspace(bob.id, beta), "NotAMember")
        yield* store.removeMembership(alice.id, beta)
        assert.isUndefined((yield* store.getUser(alice.id)).activeWorkspaceId)
        assert.isTrue(Option.isNone(yield* store.getMembership(alice.id, beta)))
        yield* failure(store.removeMembership(alice.id, beta), "NotAMember")
        yield* store.removeMembership(bob.id, acme)
        assert.deepStrictEqual(
          (yield* store.listMembers(acme)).map((m) => m.user.id),
          [alice.id]
        )
        assert.deepStrictEqual(yield* store.listMembers(freshWorkspace()), [])
      })
    )

    it.effect("sign-in links are single use and expire", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const user = yield* store.createUser(freshEmail("link"))
        const [used, expired] = [freshHash(), freshHash()]
        yield* store.createSignInLink({ tokenHash: used, userId: user.id, createdAt: 0, expiresAt: 24 * HOUR })
        yield* store.createSignInLink({ tokenHash: expired, userId: user.id, createdAt: 0, expiresAt: 24 * HOUR })
        assert.strictEqual(yield* store.redeemSignInLink(used, 24 * HOUR - 1), user.id)
        yield* failure(store.redeemSignInLink(used, 24 * HOUR - 1), "SignInLinkUsed")
        yield* failure(store.redeemSignInLink(expired, 24 * HOUR), "SignInLinkExpired")
        yield* failure(store.redeemSignInLink(freshHash(), 0), "SignInLinkNotFound")

        const raced = freshHash()
        yield* store.createSignInLink({ tokenHash: raced, userId: user.id, createdAt: 0, expiresAt: HOUR })
        const results = yield* Effect.all(
          Array.from({ length: 4 }, () => Effect.either(store.redeemSignInLink(raced, 1))),
          { concurrency: "unbounded" }
        )
        assert.lengthOf(
          results.filter((r) => r._tag === "Right"),
          1
        )
      })
    )

    it.effect("web sessions are stored by hash and end one by one or all at once", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const user = yield* store.createUser(freshEmail("web"))
        const [one, two] = [freshHash(), freshHash()]
        yield* store.createWebSession(one, new WebSession({ userId: user.id, createdAt: 1, expiresAt: 2 }))
        yield* store.createWebSession(two, new WebSession({ userId: user.id, createdAt: 1, expiresAt: 3 }))
        const found = some(yield* store.getWebSession(one))
        assert.deepStrictEqual([found.userId, found.createdAt, found.expiresAt], [user.id, 1, 2])
        yield* store.deleteWebSession(one)
        yield* store.deleteWebSession(one)
        assert.isTrue(Option.isNone(yield* store.getWebSession(one)))
        assert.isTrue(Option.isSome(yield* store.getWebSession(two)))
        yield* store.deleteUserSessions(user.id)
        assert.isTrue(Option.isNone(yield* store.getWebSession(two)))
      })
    )

    it.effect("a device code: pending, slow_down raises the interval, approval issues once, reuse revokes", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const user = yield* store.createUser(freshEmail("device"))
        const workspaceId = freshWorkspace()
        yield* store.putMembership(user.id, workspaceId, "owner")
        const code = pendingCode(0)
        yield* store.createDeviceCode(code)
        assert.deepStrictEqual(some(yield* store.findDeviceCodeByUserCode(code.userCodeHash)), code)

        const first = some(yield* store.pollDeviceCode(code.deviceCodeHash, 0, pair(0)))
        assert.strictEqual(first.outcome, "authorization_pending")
        const fast = some(yield* store.pollDeviceCode(code.deviceCodeHash, 4_999, pair(0)))
        assert.strictEqual(fast.outcome, "slow_down")
        assert.strictEqual(fast.code.intervalSeconds, 10)
        const stillFast = some(yield* store.pollDeviceCode(code.deviceCodeHash, 4_999 + 9_999, pair(0)))
        assert.strictEqual(stillFast.outcome, "slow_down")
        assert.strictEqual(stillFast.code.intervalSeconds, 15)
        const calm = some(yield* store.pollDeviceCode(code.deviceCodeHash, 4_999 + 9_999 + 15_000, pair(0)))
        assert.strictEqual(calm.outcome, "authorization_pending")
        assert.strictEqual(calm.code.intervalSeconds, 15)

        const approved = yield* store.decideDeviceCode(code.userCodeHash, 40_000, {
          approve: true,
          userId: user.id,
          workspaceId
        })
        assert.strictEqual(approved.status, "approved")
        yield* failure(
          store.decideDeviceCode(code.userCodeHash, 40_001, { approve: false, userId: user.id }),
          "DeviceCodeNotPending"
        )

        const tokens = pair(50_000)
        const issued = some(yield* store.pollDeviceCode(code.deviceCodeHash, 50_000, tokens))
        assert.strictEqual(issued.outcome, "issued")
        assert.strictEqual(issued.code.status, "consumed")
        const grant = issued.grant!
        assert.deepStrictEqual([grant.userId, grant.workspaceId, grant.clientId], [user.id, workspaceId, "cmdop-cli"])
        assert.isUndefined(grant.revokedAt)
        const facts = some(yield* store.lookupAccessToken(tokens.accessHash, undefined))
        assert.strictEqual(facts.grant.id, grant.id)
        assert.strictEqual(facts.expiresAt, tokens.accessExpiresAt)
        assert.strictEqual(facts.membership?.role, "owner")

        const again = some(yield* store.pollDeviceCode(code.deviceCodeHash, 60_000, pair(60_000)))
        assert.strictEqual(again.outcome, "reused")
        assert.isDefined(again.grant?.revokedAt)
        assert.isDefined(some(yield* store.lookupAccessToken(tokens.accessHash, undefined)).grant.revokedAt)
        assert.deepStrictEqual(
          (yield* store.listGrants(user.id)).map((g) => g.id),
          [grant.id]
        )
        assert.isTrue(Option.isNone(yield* store.pollDeviceCode(freshHash(), 0, pair(0))))
      })
    )

    it.effect("a denied code answers access_denied; an expired one expired_token and cannot be decided", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const user = yield* store.createUser(freshEmail("deny"))
        const denied = pendingCode(0)
        const expired = pendingCode(0)
        yield* store.createDeviceCode(denied)
        yield* store.createDeviceCode(expired)
        yield* store.decideDeviceCode(denied.userCodeHash, 1, { approve: false, userId: user.id })
        assert.strictEqual(
          some(yield* store.pollDeviceCode(denied.deviceCodeHash, 2, pair(2))).outcome,
          "access_denied"
        )
        assert.strictEqual(
          some(yield* store.pollDeviceCode(expired.deviceCodeHash, 600_000, pair(0))).outcome,
          "expired_token"
        )
        yield* failure(
          store.decideDeviceCode(expired.userCodeHash, 600_000, { approve: false, userId: user.id }),
          "DeviceCodeNotFound"
        )
        yield* failure(
          store.decideDeviceCode(freshHash(), 0, { approve: false, userId: user.id }),
          "DeviceCodeNotFound"
        )
        assert.deepStrictEqual(yield* store.listGrants(user.id), [])
      })
    )

    it.effect("concurrent polls of an approved code issue exactly one grant", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const user = yield* store.createUser(freshEmail("poll-race"))
        const code = pendingCode(0)
        yield* store.createDeviceCode(code)
        yield* store.decideDeviceCode(code.userCodeHash, 1, { approve: true, userId: user.id, workspaceId: undefined })
        const results = yield* Effect.all(
          Array.from({ length: 4 }, () => store.pollDeviceCode(code.deviceCodeHash, 10, pair(10))),
          { concurrency: "unbounded" }
        )
        assert.lengthOf(
          results.map(some).filter((r) => r.outcome === "issued"),
          1
        )
        assert.lengthOf(yield* store.listGrants(user.id), 1)
      })
    )

    it.effect("refresh tokens rotate; a reused one revokes the whole grant", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const { grant, tokens } = yield* signedInGrant
        const second = pair(4_000)
        const rotated = yield* store.rotateRefreshToken(tokens.refreshHash, 4_000, second)
        assert.strictEqual(rotated._tag, "rotated")
        const third = pair(5_000)
        assert.strictEqual((yield* store.rotateRefreshToken(second.refreshHash, 5_000, third))._tag, "rotated")
        assert.isUndefined(some(yield* store.lookupAccessToken(third.accessHash, undefined)).grant.revokedAt)

        const reused = yield* store.rotateRefreshToken(tokens.refreshHash, 6_000, pair(6_000))
        assert.strictEqual(reused._tag, "reused")
        for (const hash of [tokens.accessHash, second.accessHash, third.accessHash]) {
          assert.strictEqual(some(yield* store.lookupAccessToken(hash, undefined)).grant.revokedAt, 6_000)
        }
        assert.strictEqual((yield* store.rotateRefreshToken(third.refreshHash, 7_000, pair(7_000)))._tag, "invalid")
        assert.strictEqual(grant.revokedAt, undefined)
        assert.strictEqual((yield* store.rotateRefreshToken(freshHash(), 0, pair(0)))._tag, "invalid")
        assert.strictEqual(
          (yield* store.rotateRefreshToken(tokens.accessHash, 0, pair(0)))._tag,
          "invalid",
          "an access token is not a refresh token"
        )
      })
    )

    it.effect("an expired refresh token is invalid and revokes nothing", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const { tokens } = yield* signedInGrant
        const late = yield* store.rotateRefreshToken(tokens.refreshHash, tokens.refreshExpiresAt, pair(0))
        assert.strictEqual(late._tag, "invalid")
        assert.isUndefined(some(yield* store.lookupAccessToken(tokens.accessHash, undefined)).grant.revokedAt)
      })
    )

    it.effect("revoking either token revokes the grant; revokeUserGrants ends them all", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const one = yield* signedInGrant
        const revoked = some(yield* store.revokeToken(one.tokens.refreshHash, 9_000))
        assert.strictEqual(revoked.revokedAt, 9_000)
        assert.strictEqual(some(yield* store.revokeToken(one.tokens.accessHash, 9_500)).revokedAt, 9_000)
        assert.isTrue(Option.isNone(yield* store.revokeToken(freshHash(), 9_000)))

        const two = yield* signedInGrant
        yield* store.revokeUserGrants(two.user.id, 10_000)
        assert.strictEqual(
          some(yield* store.lookupAccessToken(two.tokens.accessHash, undefined)).grant.revokedAt,
          10_000
        )
      })
    )

    it.effect("lookupAccessToken reads the membership of the requested or the active workspace, live", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const { tokens, user, workspaceId } = yield* signedInGrant
        const other = freshWorkspace()
        const active = some(yield* store.lookupAccessToken(tokens.accessHash, undefined))
        assert.deepStrictEqual([active.workspaceId, active.membership?.role], [workspaceId, "member"])
        assert.strictEqual(active.user.id, user.id)

        const foreign = some(yield* store.lookupAccessToken(tokens.accessHash, other))
        assert.deepStrictEqual([foreign.workspaceId, foreign.membership], [other, undefined])
        yield* store.putMembership(user.id, other, "viewer")
        assert.strictEqual(some(yield* store.lookupAccessToken(tokens.accessHash, other)).membership?.role, "viewer")

        yield* store.setActiveWorkspace(user.id, other)
        assert.strictEqual(some(yield* store.lookupAccessToken(tokens.accessHash, undefined)).workspaceId, other)
        yield* store.putMembership(user.id, other, "member")
        assert.strictEqual(
          some(yield* store.lookupAccessToken(tokens.accessHash, undefined)).membership?.role,
          "member"
        )
        yield* store.removeMembership(user.id, other)
        const removed = some(yield* store.lookupAccessToken(tokens.accessHash, undefined))
        assert.deepStrictEqual([removed.workspaceId, removed.membership], [undefined, undefined])
        yield* store.setUserDisabled(user.id, true)
        assert.isTrue(some(yield* store.lookupAccessToken(tokens.accessHash, workspaceId)).user.disabled)
        assert.isTrue(Option.isNone(yield* store.lookupAccessToken(tokens.refreshHash, undefined)))
        assert.isTrue(Option.isNone(yield* store.lookupAccessToken(freshHash(), undefined)))
      })
    )

    it.effect("domain rules for single sign-on are kept per workspace and found by domain", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const domain = `corp-${suffix()}.example`
        const [acme, beta] = [freshWorkspace(), freshWorkspace()].sort()
        const rule = yield* store.putDomainRule(acme, domain, "viewer")
        assert.deepStrictEqual([rule.workspaceId, rule.domain, rule.role], [acme, domain, "viewer"])
        const changed = yield* store.putDomainRule(acme, domain, "member")
        assert.deepStrictEqual([changed.role, changed.createdAt], ["member", rule.createdAt])
        yield* store.putDomainRule(beta, domain, "viewer")
        yield* store.putDomainRule(acme, `other-${domain}`, "viewer")
        assert.deepStrictEqual(
          (yield* store.rulesForDomain(domain)).map((r) => [r.workspaceId, r.role]),
          [
            [acme, "member"],
            [beta, "viewer"]
          ]
        )
        assert.deepStrictEqual(
          (yield* store.listDomainRules(acme)).map((r) => r.domain),
          [domain, `other-${domain}`]
        )
        yield* store.removeDomainRule(acme, domain)
        yield* store.removeDomainRule(acme, domain)
        assert.deepStrictEqual(
          (yield* store.rulesForDomain(domain)).map((r) => r.workspaceId),
          [beta]
        )
      })
    )

    it.effect("an OpenID identity links to one user, and a user to one subject per issuer", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const issuer = `https://idp-${suffix()}.example`
        const alice = yield* store.createUser(freshEmail("sso-a"))
        const bob = yield* store.createUser(freshEmail("sso-b"))
        assert.isTrue(Option.isNone(yield* store.findSsoIdentity(issuer, "sub-a")))
        yield* store.linkSsoIdentity(issuer, "sub-a", alice.id)
        yield* store.linkSsoIdentity(issuer, "sub-a", alice.id)
        assert.strictEqual(some(yield* store.findSsoIdentity(issuer, "sub-a")), alice.id)
        yield* failure(store.linkSsoIdentity(issuer, "sub-a", bob.id), "SsoIdentityConflict")
        yield* failure(store.linkSsoIdentity(issuer, "sub-other", alice.id), "SsoIdentityConflict")
        yield* store.linkSsoIdentity(`${issuer}/second`, "sub-a", bob.id)
        assert.strictEqual(some(yield* store.findSsoIdentity(`${issuer}/second`, "sub-a")), bob.id)
        yield* failure(
          store.linkSsoIdentity(issuer, "sub-x", "usr_000000000000000000000002" as typeof bob.id),
          "UserNotFound"
        )
      })
    )

    it.effect("the audit trail keeps who, what, where and when, in order, filtered by workspace or user", () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const alice = yield* store.createUser(freshEmail("audit"))
        const workspaceId = freshWorkspace()
        yield* store.appendAudit({
          actor: "relay-host",
          action: "member.added",
          subject: alice.id,
          workspaceId,
          detail: "owner",
          at: 5
        })
        yield* store.appendAudit({
          actor: alice.id,
          action: "key.rotated",
          subject: workspaceId,
          workspaceId,
          detail: "",
          at: 5
        })
        yield* store.appendAudit({
          actor: alice.id,
          action: "login.succeeded",
          subject: alice.id,
          detail: "password",
          at: 3
        })
        const inWorkspace = yield* store.listAudit({ workspaceId })
        assert.deepStrictEqual(
          inWorkspace.map((e) => [e.actor, e.action, e.at]),
          [
            ["relay-host", "member.added", 5],
            [alice.id, "key.rotated", 5]
          ]
        )
        assert.strictEqual(inWorkspace[0]?.detail, "owner")
        assert.deepStrictEqual(
          (yield* store.listAudit({ userId: alice.id })).map((e) => e.action),
          ["login.succeeded", "member.added", "key.rotated"]
        )
        assert.deepStrictEqual(
          (yield* store.listAudit({ userId: alice.id, workspaceId: freshWorkspace() })).map((e) => e.action),
          []
        )
      })
    )
  })
