import * as AccountStore from "@cmdop/accounts/AccountStore"
import * as Accounts from "@cmdop/accounts/Accounts"
import * as Secrets from "@cmdop/accounts/Secrets"
import { Email } from "@cmdop/accounts/Email"
import { WorkspaceId } from "@cmdop/domain/Machine"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

const services = Accounts.layer().pipe(Layer.provideMerge(AccountStore.layerMemory))
const acme = WorkspaceId.make("ws_acme")
const beta = WorkspaceId.make("ws_beta")
const password = Redacted.make("correct horse battery staple")

const reasonOf = <A>(either: Either.Either<A, { readonly reason: string }>) =>
  Either.isLeft(either) ? either.left.reason : "succeeded"

/** Alice, first owner of acme, added by the relay host, who has set her password through her link. */
const alice = Effect.gen(function* () {
  const accounts = yield* Accounts.Accounts
  const added = yield* accounts.addMember({
    actor: "relay-host",
    email: " Alice@Example.com ",
    workspaceId: acme,
    role: "owner"
  })
  const signedIn = yield* accounts.redeemSignInLink(added.link!.token, password)
  return { ...added, signedIn }
})

describe("Accounts", () => {
  it.effect("the relay host adds the first owner, who sets a password through a single-use 24 h link", () =>
    Effect.gen(function* () {
      const accounts = yield* Accounts.Accounts
      const store = yield* AccountStore.AccountStore
      const added = yield* accounts.addMember({
        actor: "relay-host",
        email: "Alice@Example.com",
        workspaceId: acme,
        role: "owner"
      })
      const link = added.link!
      assert.strictEqual(added.user.email, "alice@example.com")
      assert.strictEqual(added.user.activeWorkspaceId, acme)
      assert.strictEqual(link.expiresAt, 24 * 3_600_000)
      assert.notInclude(String(link.token), Redacted.value(link.token))

      const weak = yield* Effect.either(accounts.redeemSignInLink(link.token, Redacted.make("short")))
      assert.strictEqual(reasonOf(weak), "WeakPassword", "a weak password does not use up the link")
      const signedIn = yield* accounts.redeemSignInLink(link.token, password)
      assert.strictEqual(signedIn.user.id, added.user.id)
      assert.strictEqual(signedIn.csrfToken, Secrets.csrfToken(signedIn.sessionId))
      const stored = Redacted.value(Option.getOrThrow(yield* store.getPasswordHash(added.user.id)))
      assert.match(stored, /^\$argon2id\$v=19\$/)
      assert.notInclude(stored, Redacted.value(password))

      const again = yield* Effect.either(accounts.redeemSignInLink(link.token, password))
      assert.strictEqual(reasonOf(again), "SignInLinkUsed")

      const late = yield* accounts.issueSignInLink(added.user.id, "relay-host")
      yield* TestClock.adjust("24 hours")
      assert.strictEqual(
        reasonOf(yield* Effect.either(accounts.redeemSignInLink(late.token, password))),
        "SignInLinkExpired"
      )
      const actions = (yield* store.listAudit({ userId: added.user.id })).map((e) => e.action)
      assert.includeMembers(actions, [
        "user.created",
        "member.added",
        "signin-link.issued",
        "signin-link.used",
        "password.set"
      ])
    }).pipe(Effect.provide(services))
  )

  it.effect("sign in with the password; wrong password and unknown email fail alike; sign-out ends the session", () =>
    Effect.gen(function* () {
      const accounts = yield* Accounts.Accounts
      const { user } = yield* alice
      const session = yield* accounts.signIn("ALICE@example.com", password)
      assert.strictEqual((yield* accounts.session(session.sessionId)).user.id, user.id)
      const wrong = yield* Effect.flip(accounts.signIn("alice@example.com", Redacted.make("not the password")))
      const unknown = yield* Effect.flip(accounts.signIn("nobody@example.com", password))
      const garbage = yield* Effect.flip(accounts.signIn("not an email", password))
      assert.deepStrictEqual(
        [wrong.reason, unknown.reason, garbage.reason],
        ["InvalidCredentials", "InvalidCredentials", "InvalidCredentials"]
      )
      assert.strictEqual(wrong.message, unknown.message)
      assert.notInclude(wrong.message, "not the password")

      yield* accounts.signOut(session.sessionId)
      assert.strictEqual(reasonOf(yield* Effect.either(accounts.session(session.sessionId))), "SessionInvalid")
      assert.strictEqual(reasonOf(yield* Effect.either(accounts.session(Secrets.mintSessionId()))), "SessionInvalid")
    }).pipe(Effect.provide(services))
  )

  it.effect("sessions expire after 7 days; the CSRF token belongs to its session only", () =>
    Effect.gen(function* () {
      const accounts = yield* Accounts.Accounts
      const { signedIn } = yield* alice
      const other = yield* accounts.signIn("alice@example.com", password)
      yield* accounts.checkCsrf(signedIn.sessionId, signedIn.csrfToken)
      assert.strictEqual(
        reasonOf(yield* Effect.either(accounts.checkCsrf(signedIn.sessionId, other.csrfToken))),
        "CsrfMismatch"
      )
      assert.strictEqual(
        reasonOf(yield* Effect.either(accounts.checkCsrf(signedIn.sessionId, undefined))),
        "CsrfMismatch"
      )
      assert.strictEqual(reasonOf(yield* Effect.either(accounts.checkCsrf(signedIn.sessionId, ""))), "CsrfMismatch")
      yield* TestClock.adjust("7 days")
      assert.strictEqual(reasonOf(yield* Effect.either(accounts.session(signedIn.sessionId))), "SessionInvalid")
    }).pipe(Effect.provide(services))
  )

  it.effect("owners manage members; members and viewers cannot; the last owner stays", () =>
    Effect.gen(function* () {
      const accounts = yield* Accounts.Accounts
      const { user: owner } = yield* alice
      const bob = (yield* accounts.addMember({
        actor: owner.id,
        email: "bob@example.com",
        workspaceId: acme,
        role: "member"
      })).user
      const carol = (yield* accounts.addMember({
        actor: owner.id,
        email: "carol@example.com",
        workspaceId: acme,
        role: "viewer"
      })).user

      const byMember = yield* Effect.either(
        accounts.addMember({ actor: bob.id, email: "eve@example.com", workspaceId: acme, role: "owner" })
      )
      assert.strictEqual(reasonOf(byMember), "NotOwner")
      assert.strictEqual(
        reasonOf(yield* Effect.either(accounts.removeMember({ actor: carol.id, workspaceId: acme, userId: bob.id }))),
        "NotOwner"
      )
      const outsider = yield* Effect.either(
        accounts.addMember({ actor: owner.id, email: "x@example.com", workspaceId: beta, role: "viewer" })
      )
      assert.strictEqual(reasonOf(outsider), "NotOwner", "an owner of acme is nobody in beta")

      const selfDemotion = yield* Effect.either(
        accounts.addMember({ actor: owner.id, email: owner.email, workspaceId: acme, role: "member" })
      )
      assert.strictEqual(reasonOf(selfDemotion), "LastOwner")
      assert.strictEqual(
        reasonOf(yield* Effect.either(accounts.removeMember({ actor: owner.id, workspaceId: acme, userId: owner.id }))),
        "LastOwner"
      )
      yield* accounts.addMember({ actor: owner.id, email: "bob@example.com", workspaceId: acme, role: "owner" })
      yield* accounts.removeMember({ actor: bob.id, workspaceId: acme, userId: owner.id })
      // Removing someone who is not a member (any more) says so of them, not of the owner acting.
      const again = yield* Effect.either(accounts.removeMember({ actor: bob.id, workspaceId: acme, userId: owner.id }))
      assert.strictEqual(reasonOf(again), "NotAMember")
      if (Either.isLeft(again)) assert.match(again.left.message, /^the user is not a member of workspace /)

      const members = yield* accounts.listMembers(carol.id, acme)
      assert.deepStrictEqual(
        members.map((m) => [m.user.email, m.membership.role]),
        [
          ["bob@example.com", "owner"],
          ["carol@example.com", "viewer"]
        ]
      )
      assert.strictEqual(reasonOf(yield* Effect.either(accounts.listMembers(owner.id, acme))), "NotAMember")
      assert.strictEqual(reasonOf(yield* Effect.either(accounts.auditTrail(carol.id, acme))), "NotOwner")
      const trail = (yield* accounts.auditTrail(bob.id, acme)).map((e) => [e.actor, e.action])
      assert.includeDeepMembers(trail, [
        ["relay-host", "member.added"],
        [owner.id, "member.role-changed"],
        [bob.id, "member.removed"]
      ])
    }).pipe(Effect.provide(services))
  )

  it.effect("an owner gets a sign-in link only for a person new to the relay; a refused add creates nobody", () =>
    Effect.gen(function* () {
      const accounts = yield* Accounts.Accounts
      const store = yield* AccountStore.AccountStore
      const { user: owner } = yield* alice
      const invited = yield* accounts.addMember({
        actor: owner.id,
        email: "dan@example.com",
        workspaceId: acme,
        role: "member"
      })
      assert.isDefined(invited.link, "a new person needs the link to set a password")
      // Erin already has an account (in beta); acme's owner must not receive a link that resets her password.
      const erin = yield* accounts.addMember({
        actor: "relay-host",
        email: "erin@example.com",
        workspaceId: beta,
        role: "owner"
      })
      assert.isDefined(erin.link, "the relay host always gets one")
      const added = yield* accounts.addMember({
        actor: owner.id,
        email: "erin@example.com",
        workspaceId: acme,
        role: "viewer"
      })
      assert.isUndefined(added.link)
      assert.strictEqual(added.user.id, erin.user.id)

      const refused = yield* Effect.either(
        accounts.addMember({ actor: invited.user.id, email: "frank@example.com", workspaceId: acme, role: "viewer" })
      )
      assert.strictEqual(reasonOf(refused), "NotOwner")
      assert.isTrue(Option.isNone(yield* store.findUserByEmail(Email.make("frank@example.com"))))
    }).pipe(Effect.provide(services))
  )

  it.effect("the active workspace switches only to one the user belongs to; workspaces lists them with roles", () =>
    Effect.gen(function* () {
      const accounts = yield* Accounts.Accounts
      const { user } = yield* alice
      yield* accounts.addMember({ actor: "relay-host", email: user.email, workspaceId: beta, role: "member" })
      assert.deepStrictEqual(yield* accounts.workspaces(user.id), [
        { workspaceId: acme, role: "owner", active: true },
        { workspaceId: beta, role: "member", active: false }
      ])
      assert.strictEqual((yield* accounts.setActiveWorkspace(user.id, beta)).activeWorkspaceId, beta)
      const foreign = yield* Effect.either(accounts.setActiveWorkspace(user.id, WorkspaceId.make("ws_other")))
      assert.strictEqual(reasonOf(foreign), "NotAMember")
      yield* accounts.record({
        actor: user.id,
        action: "machine.migrated",
        subject: "machine-1",
        workspaceId: beta,
        detail: `from ${acme}`,
        at: 0
      })
      assert.includeMembers(
        (yield* accounts.auditTrail("relay-host", beta)).map((e) => e.action),
        ["workspace.activated", "machine.migrated"]
      )
    }).pipe(Effect.provide(services))
  )

  it.effect("disabling a user ends their sessions and refuses sign-in; re-enabling lets them in again", () =>
    Effect.gen(function* () {
      const accounts = yield* Accounts.Accounts
      const { signedIn, user } = yield* alice
      yield* accounts.setDisabled(user.id, true)
      assert.strictEqual(reasonOf(yield* Effect.either(accounts.session(signedIn.sessionId))), "SessionInvalid")
      assert.strictEqual(reasonOf(yield* Effect.either(accounts.signIn(user.email, password))), "InvalidCredentials")
      yield* accounts.setDisabled(user.id, false)
      assert.isTrue(Either.isRight(yield* Effect.either(accounts.signIn(user.email, password))))
    }).pipe(Effect.provide(services))
  )

  it.effect("a new password through a link ends every earlier session", () =>
    Effect.gen(function* () {
      const accounts = yield* Accounts.Accounts
      const { signedIn, user } = yield* alice
      const reset = yield* accounts.issueSignInLink(user.id, "relay-host")
      const fresh = yield* accounts.redeemSignInLink(reset.token, Redacted.make("another long password"))
      assert.strictEqual(reasonOf(yield* Effect.either(accounts.session(signedIn.sessionId))), "SessionInvalid")
      assert.strictEqual((yield* accounts.session(fresh.sessionId)).user.id, user.id)
      assert.strictEqual(reasonOf(yield* Effect.either(accounts.signIn(user.email, password))), "InvalidCredentials")
    }).pipe(Effect.provide(services))
  )
})
