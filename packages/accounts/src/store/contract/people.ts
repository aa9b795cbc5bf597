/**
 * The account store contract for people: users, passwords, memberships, sign-in links, web sessions,
 * single sign-on rules and identities, and the audit trail.
 */
import type { Vitest } from "@effect/vitest"
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { AccountStore } from "../service.js"
import * as Redacted from "effect/Redacted"
import { WebSession } from "../records.js"
import { failure, freshEmail, freshHash, freshWorkspace, HOUR, some, suffix } from "./fixtures.js"

/** Registers these contract tests on `it` (the store layer's test methods). */
export const peopleContract = (it: Vitest.MethodsNonLive<AccountStore>) => {
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
      const other = yield* store.createUser(freshEmail("link"))
      const [used, expired] = [freshHash(), freshHash()]
      yield* store.createSignInLink({ tokenHash: used, userId: user.id, createdAt: 0, expiresAt: 24 * HOUR })
      yield* store.createSignInLink({ tokenHash: expired, userId: other.id, createdAt: 0, expiresAt: 24 * HOUR })
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

  it.effect("redeeming a link ends the person's other unused links, and nobody else's", () =>
    Effect.gen(function* () {
      const store = yield* AccountStore
      const user = yield* store.createUser(freshEmail("links"))
      const other = yield* store.createUser(freshEmail("links"))
      const [first, second, others] = [freshHash(), freshHash(), freshHash()]
      yield* store.createSignInLink({ tokenHash: first, userId: user.id, createdAt: 0, expiresAt: HOUR })
      yield* store.createSignInLink({ tokenHash: second, userId: user.id, createdAt: 1, expiresAt: HOUR })
      yield* store.createSignInLink({ tokenHash: others, userId: other.id, createdAt: 1, expiresAt: HOUR })
      assert.strictEqual(yield* store.redeemSignInLink(second, 2), user.id)
      yield* failure(store.redeemSignInLink(first, 3), "SignInLinkUsed")
      assert.strictEqual(yield* store.redeemSignInLink(others, 3), other.id)
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
}
