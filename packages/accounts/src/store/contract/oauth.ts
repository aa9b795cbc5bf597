/**
 * The account store contract for OAuth: device codes, grants, token rotation and revocation, the access token
 * lookup, and purging what expired.
 */
import type { Vitest } from "@effect/vitest"
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { AccountStore } from "../service.js"
import { DeviceCodeRecord, type NewTokenPair, WebSession } from "../records.js"
import { failure, freshEmail, freshHash, freshWorkspace, pair, pendingCode, signedInGrant, some } from "./fixtures.js"

/** Registers these contract tests on `it` (the store layer's test methods). */
export const oauthContract = (it: Vitest.MethodsNonLive<AccountStore>) => {
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
      assert.strictEqual(some(yield* store.pollDeviceCode(denied.deviceCodeHash, 2, pair(2))).outcome, "access_denied")
      assert.strictEqual(
        some(yield* store.pollDeviceCode(expired.deviceCodeHash, 600_000, pair(0))).outcome,
        "expired_token"
      )
      yield* failure(
        store.decideDeviceCode(expired.userCodeHash, 600_000, { approve: false, userId: user.id }),
        "DeviceCodeNotFound"
      )
      yield* failure(store.decideDeviceCode(freshHash(), 0, { approve: false, userId: user.id }), "DeviceCodeNotFound")
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

  it.effect(
    "concurrent uses of one refresh token: one rotates, the next is reuse and revokes, the rest are invalid",
    () =>
      Effect.gen(function* () {
        const store = yield* AccountStore
        const { tokens } = yield* signedInGrant
        const results = yield* Effect.all(
          Array.from({ length: 4 }, () => store.rotateRefreshToken(tokens.refreshHash, 4_000, pair(4_000))),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(results.map((r) => r._tag).sort(), ["invalid", "invalid", "reused", "rotated"])
        assert.strictEqual(some(yield* store.lookupAccessToken(tokens.accessHash, undefined)).grant.revokedAt, 4_000)
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
      assert.strictEqual(some(yield* store.lookupAccessToken(two.tokens.accessHash, undefined)).grant.revokedAt, 10_000)
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
      assert.strictEqual(some(yield* store.lookupAccessToken(tokens.accessHash, undefined)).membership?.role, "member")
      yield* store.removeMembership(user.id, other)
      const removed = some(yield* store.lookupAccessToken(tokens.accessHash, undefined))
      assert.deepStrictEqual([removed.workspaceId, removed.membership], [undefined, undefined])
      yield* store.setUserDisabled(user.id, true)
      assert.isTrue(some(yield* store.lookupAccessToken(tokens.accessHash, workspaceId)).user.disabled)
      assert.isTrue(Option.isNone(yield* store.lookupAccessToken(tokens.refreshHash, undefined)))
      assert.isTrue(Option.isNone(yield* store.lookupAccessToken(freshHash(), undefined)))
    })
  )

  it.effect("purgeExpired deletes expired sessions, links, codes and tokens, and nothing live", () =>
    Effect.gen(function* () {
      const store = yield* AccountStore
      // Far in the future, so rows other tests of this layer left behind are purged too: count only ours.
      const base = 10 ** 12 + Math.floor(Math.random() * 10 ** 9)
      yield* store.purgeExpired(base)
      const user = yield* store.createUser(freshEmail("purge"))
      const [oldSession, liveSession, oldLink, liveLink] = [freshHash(), freshHash(), freshHash(), freshHash()]
      yield* store.createWebSession(
        oldSession,
        new WebSession({ userId: user.id, createdAt: base, expiresAt: base + 10 })
      )
      yield* store.createWebSession(
        liveSession,
        new WebSession({ userId: user.id, createdAt: base, expiresAt: base + 1_000 })
      )
      yield* store.createSignInLink({ tokenHash: oldLink, userId: user.id, createdAt: base, expiresAt: base + 10 })
      yield* store.createSignInLink({
        tokenHash: liveLink,
        userId: user.id,
        createdAt: base,
        expiresAt: base + 1_000
      })
      const code = pendingCode(base)
      yield* store.createDeviceCode(new DeviceCodeRecord({ ...code, expiresAt: base + 10 }))
      const live = pendingCode(base)
      yield* store.createDeviceCode(new DeviceCodeRecord({ ...live, expiresAt: base + 1_000 }))
      yield* store.decideDeviceCode(live.userCodeHash, base, {
        approve: true,
        userId: user.id,
        workspaceId: undefined
      })
      const tokens: NewTokenPair = {
        accessHash: freshHash(),
        accessExpiresAt: base + 10,
        refreshHash: freshHash(),
        refreshExpiresAt: base + 1_000
      }
      yield* store.pollDeviceCode(live.deviceCodeHash, base, tokens)

      assert.strictEqual(yield* store.purgeExpired(base + 10), 4)
      assert.isTrue(Option.isNone(yield* store.getWebSession(oldSession)))
      assert.isTrue(Option.isSome(yield* store.getWebSession(liveSession)))
      yield* failure(store.redeemSignInLink(oldLink, base + 11), "SignInLinkNotFound")
      assert.strictEqual(yield* store.redeemSignInLink(liveLink, base + 11), user.id)
      assert.isTrue(Option.isNone(yield* store.findDeviceCodeByUserCode(code.userCodeHash)))
      assert.isTrue(Option.isNone(yield* store.lookupAccessToken(tokens.accessHash, undefined)))
      assert.strictEqual(
        (yield* store.rotateRefreshToken(tokens.refreshHash, base + 20, pair(base + 20)))._tag,
        "rotated"
      )
      assert.lengthOf(yield* store.listGrants(user.id), 1)
      assert.strictEqual(yield* store.purgeExpired(base + 10), 0)
    })
  )
}
