import * as AccountStore from "@cmdop/accounts/AccountStore"
import * as Accounts from "@cmdop/accounts/Accounts"
import { Email } from "@cmdop/accounts/Email"
import * as Sso from "@cmdop/accounts/Sso"
import { WorkspaceId } from "@cmdop/domain/Machine"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, signOnAs, startProvider } from "./oidcProvider.js"

const acme = WorkspaceId.make("ws_acme")
const beta = WorkspaceId.make("ws_beta")

const people = {
  alice: { email: "Alice@Acme.example", email_verified: true },
  newcomer: { email: "new@acme.example", email_verified: true },
  outsider: { email: "someone@elsewhere.example", email_verified: true },
  unverified: { email: "claims@acme.example", email_verified: false }
}

/** The provider, and the relay side (store, `Accounts`, `Sso`) configured for it. */
const setup = Effect.gen(function* () {
  const { issuer } = yield* startProvider(people)
  const context = yield* Layer.build(
    Sso.layer({
      issuer,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUri: REDIRECT_URI,
      allowInsecureRequests: true
    }).pipe(Layer.provideMerge(Accounts.layer()), Layer.provideMerge(AccountStore.layerMemory))
  )
  return {
    issuer,
    ...Effect.runSync(
      Effect.all({ sso: Sso.Sso, accounts: Accounts.Accounts, store: AccountStore.AccountStore }).pipe(
        Effect.provide(context)
      )
    )
  }
})

/** One whole sign-on as `login`, ending in `Sso.complete`. */
const signOn = (sso: Sso.Sso["Type"], login: string) =>
  Effect.gen(function* () {
    const { attempt, authorizationUrl } = yield* sso.begin
    const callback = yield* signOnAs(authorizationUrl, login)
    return yield* Effect.either(sso.complete(callback, attempt))
  })

const reasonOf = <A>(either: Either.Either<A, { readonly reason: string }>) =>
  Either.isLeft(either) ? either.left.reason : "succeeded"

describe("single sign-on against a real OpenID provider (oidc-provider on loopback)", () => {
  it.live("the authorization URL carries PKCE (S256), state and nonce", () =>
    Effect.gen(function* () {
      const { sso } = yield* setup
      const { attempt, authorizationUrl } = yield* sso.begin
      const params = authorizationUrl.searchParams
      assert.strictEqual(params.get("code_challenge_method"), "S256")
      assert.match(params.get("code_challenge") ?? "", /^[A-Za-z0-9_-]{43}$/)
      assert.strictEqual(params.get("state"), attempt.state)
      assert.strictEqual(params.get("nonce"), attempt.nonce)
      assert.strictEqual(params.get("redirect_uri"), REDIRECT_URI)
      assert.notInclude(authorizationUrl.href, String(attempt.codeVerifier))
    }).pipe(Effect.scoped)
  )

  it.live("an invited person signs in as their account, and the provider's subject is linked to it", () =>
    Effect.gen(function* () {
      const { accounts, issuer, sso, store } = yield* setup
      const invited = yield* accounts.addMember({
        actor: "relay-host",
        email: "alice@acme.example",
        workspaceId: acme,
        role: "member"
      })
      const first = yield* signOn(sso, "alice")
      assert.strictEqual(Either.getOrThrow(first).user.id, invited.user.id)
      const session = yield* accounts.session(Either.getOrThrow(first).sessionId)
      assert.strictEqual(session.user.id, invited.user.id)
      assert.strictEqual(Option.getOrThrow(yield* store.findSsoIdentity(issuer, "alice")), invited.user.id)
      const again = yield* signOn(sso, "alice")
      assert.strictEqual(Either.getOrThrow(again).user.id, invited.user.id)
      const logins = (yield* store.listAudit({ userId: invited.user.id })).filter((e) => e.action === "login.succeeded")
      assert.lengthOf(logins, 2)
      assert.include(logins[0]!.detail, "single sign-on")
    }).pipe(Effect.scoped)
  )

  it.live("a new person joins exactly the workspaces whose domain rule matches, with the rule's role", () =>
    Effect.gen(function* () {
      const { accounts, sso, store } = yield* setup
      yield* accounts.addMember({ actor: "relay-host", email: "owner@acme.example", workspaceId: acme, role: "owner" })
      const owner = Option.getOrThrow(yield* store.findUserByEmail(Email.make("owner@acme.example")))
      yield* accounts.setDomainRule({ actor: owner.id, workspaceId: acme, domain: "@ACME.example", role: "viewer" })
      const refused = yield* Effect.either(
        accounts.setDomainRule({ actor: owner.id, workspaceId: beta, domain: "acme.example", role: "owner" })
      )
      assert.strictEqual(reasonOf(refused), "NotOwner", "an owner of acme cannot open beta")

      const joined = Either.getOrThrow(yield* signOn(sso, "newcomer"))
      assert.strictEqual(joined.user.email, "new@acme.example")
      assert.deepStrictEqual(
        (yield* store.listMemberships(joined.user.id)).map((m) => [m.workspaceId, m.role]),
        [[acme, "viewer"]]
      )
      assert.strictEqual(joined.user.activeWorkspaceId, acme)
      assert.include(
        (yield* accounts.auditTrail(owner.id, acme)).map((e) => e.action),
        "member.added"
      )

      const outsider = yield* signOn(sso, "outsider")
      assert.strictEqual(reasonOf(outsider), "NotInvited")
      assert.isTrue(Option.isNone(yield* store.findUserByEmail(Email.make("someone@elsewhere.example"))))
    }).pipe(Effect.scoped)
  )

  it.live("an unverified email is refused even when its domain is open; a disabled account cannot sign on", () =>
    Effect.gen(function* () {
      const { accounts, sso } = yield* setup
      yield* accounts.setDomainRule({ actor: "relay-host", workspaceId: acme, domain: "acme.example", role: "member" })
      assert.strictEqual(reasonOf(yield* signOn(sso, "unverified")), "EmailNotVerified")
      const alice = yield* accounts.addMember({
        actor: "relay-host",
        email: "alice@acme.example",
        workspaceId: acme,
        role: "member"
      })
      yield* accounts.setDisabled(alice.user.id, true)
      assert.strictEqual(reasonOf(yield* signOn(sso, "alice")), "UserDisabled")
    }).pipe(Effect.scoped)
  )

  it.live("a callback with another attempt's state, nonce or PKCE verifier is rejected", () =>
    Effect.gen(function* () {
      const { accounts, sso } = yield* setup
      yield* accounts.addMember({ actor: "relay-host", email: "alice@acme.example", workspaceId: acme, role: "member" })
      const mismatched = (tamper: (own: Sso.SsoAttempt, other: Sso.SsoAttempt) => Sso.SsoAttempt) =>
        Effect.gen(function* () {
          const { attempt, authorizationUrl } = yield* sso.begin
          const other = (yield* sso.begin).attempt
          const callback = yield* signOnAs(authorizationUrl, "alice")
          return yield* Effect.either(sso.complete(callback, tamper(attempt, other)))
        })
      const state = yield* mismatched((own, other) => ({ ...own, state: other.state }))
      assert.strictEqual(reasonOf(state), "CallbackRejected")
      assert.include(Either.isLeft(state) ? state.left.message : "", "state")
      assert.strictEqual(
        reasonOf(yield* mismatched((own, other) => ({ ...own, nonce: other.nonce }))),
        "CallbackRejected"
      )
      assert.strictEqual(
        reasonOf(yield* mismatched((own, other) => ({ ...own, codeVerifier: other.codeVerifier }))),
        "CallbackRejected"
      )
      assert.strictEqual(reasonOf(yield* mismatched((own) => own)), "succeeded")
    }).pipe(Effect.scoped)
  )

  it.live("an unreachable provider is a clear error that holds no secret", () =>
    Effect.gen(function* () {
      const context = yield* Layer.build(
        Sso.layer({
          issuer: "http://127.0.0.1:1",
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          redirectUri: REDIRECT_URI,
          allowInsecureRequests: true
        }).pipe(Layer.provideMerge(Accounts.layer()), Layer.provideMerge(AccountStore.layerMemory))
      )
      const sso = Effect.runSync(Effect.provide(Sso.Sso, context))
      const error = yield* Effect.flip(sso.begin)
      assert.strictEqual(error.reason, "ProviderUnreachable")
      assert.notInclude(error.message, "relay-client-secret")
    }).pipe(Effect.scoped)
  )
})
