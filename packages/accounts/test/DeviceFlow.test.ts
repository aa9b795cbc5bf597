import { Email } from "@cmdop/accounts/Email"
import * as Secrets from "@cmdop/accounts/Secrets"
import { WorkspaceId } from "@cmdop/domain/Machine"
import * as AccountStore from "@cmdop/accounts/AccountStore"
import { afterAll, assert, layer } from "@effect/vitest"
import * as Layer from "effect/Layer"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { randomBytes } from "node:crypto"
import { freshPgSchema } from "@cmdop/test-helpers/Postgres"
import { type Harness, harness, pollToken, refresh, revoke, startDeviceFlow } from "./oauthHarness.js"

const right = <A, E>(either: Either.Either<A, E>): A => {
  assert.isTrue(Either.isRight(either), `expected success, got ${JSON.stringify(either)}`)
  return Either.getOrThrow(either)
}
const errorOf = <A>(either: Either.Either<A, { readonly error: string }>): string => {
  assert.isTrue(Either.isLeft(either), `expected an OAuth error, got ${JSON.stringify(either)}`)
  return Either.isLeft(either) ? either.left.error : ""
}

/** A user who owns a fresh workspace (their active one) and belongs to a second as viewer. */
const person = (h: Harness) =>
  Effect.gen(function* () {
    const user = yield* h.store.createUser(Email.make(`p-${randomBytes(4).toString("hex")}@example.com`))
    const acme = WorkspaceId.make(`ws_acme_${randomBytes(4).toString("hex")}`)
    const beta = WorkspaceId.make(`ws_beta_${randomBytes(4).toString("hex")}`)
    yield* h.store.putMembership(user.id, acme, "owner")
    yield* h.store.putMembership(user.id, beta, "viewer")
    return { user, acme, beta }
  })

/** Starts a flow, approves it as `user`, collects the tokens. */
const login = (h: Harness, userId: Parameters<Harness["oauth"]["approveDevice"]>[0]) =>
  Effect.gen(function* () {
    const device = right(yield* startDeviceFlow(h))
    yield* h.oauth.approveDevice(userId, device.user_code)
    return right(yield* pollToken(h, device.device_code))
  })

const authenticate = (h: Harness, token: string, workspace?: WorkspaceId) =>
  Effect.either(h.oauth.authenticateAccessToken(Redacted.make(token), workspace))

/** The whole suite over one store layer (built once, shared by its tests, which make their own people). */
const deviceFlowSuite = (name: string, storeLayer: Layer.Layer<AccountStore.AccountStore, unknown>) =>
  layer(storeLayer, { timeout: "60 seconds" })(
    `device authorization grant (RFC 8628) through oauth4webapi (${name})`,
    (it) => {
      it.scoped("metadata, authorization_pending, approval, tokens bound to the user and their active workspace", () =>
        Effect.gen(function* () {
          const h = yield* harness
          assert.strictEqual(h.as.issuer, h.issuer)
          assert.strictEqual(h.as.device_authorization_endpoint, `${h.issuer}/oauth/device_authorization`)
          assert.strictEqual(h.as.revocation_endpoint, `${h.issuer}/oauth/revoke`)
          const { acme, beta, user } = yield* person(h)

          const device = right(yield* startDeviceFlow(h))
          assert.match(device.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/)
          assert.strictEqual(device.verification_uri, `${h.issuer}/device`)
          assert.strictEqual(device.verification_uri_complete, `${h.issuer}/device?user_code=${device.user_code}`)
          assert.deepStrictEqual([device.expires_in, device.interval], [600, 5])

          assert.strictEqual(errorOf(yield* pollToken(h, device.device_code)), "authorization_pending")
          yield* TestClock.adjust("5 seconds")
          assert.strictEqual(errorOf(yield* pollToken(h, device.device_code)), "authorization_pending")

          // The person types the code in lower case without the dash; it is the same code.
          const typed = device.user_code.toLowerCase().replace("-", "")
          assert.strictEqual((yield* h.oauth.describeUserCode(typed)).clientId, "cmdop-cli")
          yield* h.oauth.approveDevice(user.id, typed)
          yield* TestClock.adjust("5 seconds")
          const tokens = right(yield* pollToken(h, device.device_code))
          assert.match(tokens.access_token, /^cmdop_[0-9A-Za-z]{43}$/)
          assert.match(tokens.refresh_token ?? "", /^clitr_[0-9A-Za-z]{43}$/)
          assert.strictEqual(tokens.token_type, "bearer")
          assert.strictEqual(tokens.expires_in, 72 * 3600)

          const identity = right(yield* authenticate(h, tokens.access_token))
          assert.deepStrictEqual([identity.user.id, identity.workspaceId, identity.role], [user.id, acme, "owner"])
          const other = right(yield* authenticate(h, tokens.access_token, beta))
          assert.deepStrictEqual([other.workspaceId, other.role], [beta, "viewer"])
          const foreign = WorkspaceId.make("ws_not_mine")
          const refused = yield* authenticate(h, tokens.access_token, foreign)
          assert.strictEqual(Either.isLeft(refused) && refused.left.reason, "NotAMember")
          // The store holds the token's hash only.
          const facts = yield* h.store.lookupAccessToken(
            Secrets.hashSecret(Redacted.make(tokens.access_token)),
            undefined
          )
          assert.isTrue(facts._tag === "Some")
          assert.include(
            (yield* h.store.listAudit({ userId: user.id })).map((e) => e.action),
            "token.issued"
          )
        })
      )

      it.scoped("polling faster than the interval answers slow_down and adds 5 s to the interval", () =>
        Effect.gen(function* () {
          const h = yield* harness
          const device = right(yield* startDeviceFlow(h))
          assert.strictEqual(errorOf(yield* pollToken(h, device.device_code)), "authorization_pending")
          yield* TestClock.adjust("1 second")
          assert.strictEqual(errorOf(yield* pollToken(h, device.device_code)), "slow_down")
          // The interval is now 10 s: 9 s later is still too fast (and raises it to 15 s) ...
          yield* TestClock.adjust("9 seconds")
          assert.strictEqual(errorOf(yield* pollToken(h, device.device_code)), "slow_down")
          // ... and 15 s later is fine.
          yield* TestClock.adjust("15 seconds")
          assert.strictEqual(errorOf(yield* pollToken(h, device.device_code)), "authorization_pending")
        })
      )

      it.scoped("a refusal in the browser answers access_denied", () =>
        Effect.gen(function* () {
          const h = yield* harness
          const { user } = yield* person(h)
          const device = right(yield* startDeviceFlow(h))
          yield* h.oauth.denyDevice(user.id, device.user_code)
          assert.strictEqual(errorOf(yield* pollToken(h, device.device_code)), "access_denied")
          const late = yield* Effect.either(h.oauth.approveDevice(user.id, device.user_code))
          assert.strictEqual(Either.isLeft(late) && late.left.reason, "InvalidUserCode")
        })
      )

      it.scoped("a code not approved within its 10 minutes answers expired_token and can no longer be approved", () =>
        Effect.gen(function* () {
          const h = yield* harness
          const { user } = yield* person(h)
          const device = right(yield* startDeviceFlow(h))
          yield* TestClock.adjust("10 minutes")
          assert.strictEqual(errorOf(yield* pollToken(h, device.device_code)), "expired_token")
          const late = yield* Effect.either(h.oauth.approveDevice(user.id, device.user_code))
          assert.strictEqual(Either.isLeft(late) && late.left.reason, "InvalidUserCode")
        })
      )

      it.scoped("a device code used twice is refused and the login it made is revoked", () =>
        Effect.gen(function* () {
          const h = yield* harness
          const { user } = yield* person(h)
          const device = right(yield* startDeviceFlow(h))
          yield* h.oauth.approveDevice(user.id, device.user_code)
          const tokens = right(yield* pollToken(h, device.device_code))
          yield* TestClock.adjust("5 seconds")
          assert.strictEqual(errorOf(yield* pollToken(h, device.device_code)), "invalid_grant")
          const after = yield* authenticate(h, tokens.access_token)
          assert.strictEqual(Either.isLeft(after) && after.left.reason, "Revoked")
          assert.strictEqual(errorOf(yield* refresh(h, tokens.refresh_token!)), "invalid_grant")
          assert.strictEqual(errorOf(yield* pollToken(h, "cdc_unknown")), "invalid_grant")
        })
      )

      it.scoped("refresh tokens rotate; replaying an old one revokes the whole login", () =>
        Effect.gen(function* () {
          const h = yield* harness
          const { user } = yield* person(h)
          const first = yield* login(h, user.id)
          yield* TestClock.adjust("1 hour")
          const second = right(yield* refresh(h, first.refresh_token!))
          assert.notStrictEqual(second.refresh_token, first.refresh_token)
          assert.notStrictEqual(second.access_token, first.access_token)
          assert.isTrue(Either.isRight(yield* authenticate(h, second.access_token)))
          const third = right(yield* refresh(h, second.refresh_token!))

          // Someone replays the first refresh token: the grant ends, for the thief and the owner alike.
          assert.strictEqual(errorOf(yield* refresh(h, first.refresh_token!)), "invalid_grant")
          for (const token of [first.access_token, second.access_token, third.access_token]) {
            const result = yield* authenticate(h, token)
            assert.strictEqual(Either.isLeft(result) && result.left.reason, "Revoked")
          }
          assert.strictEqual(errorOf(yield* refresh(h, third.refresh_token!)), "invalid_grant")
          assert.include(
            (yield* h.store.listAudit({ userId: user.id })).map((e) => e.action),
            "token.reuse-detected"
          )
        })
      )

      it.scoped("revocation (RFC 7009) ends the login at once; unknown tokens are accepted silently", () =>
        Effect.gen(function* () {
          const h = yield* harness
          const { user } = yield* person(h)
          const tokens = yield* login(h, user.id)
          right(yield* revoke(h, tokens.refresh_token!))
          const after = yield* authenticate(h, tokens.access_token)
          assert.strictEqual(Either.isLeft(after) && after.left.reason, "Revoked")
          assert.strictEqual(errorOf(yield* refresh(h, tokens.refresh_token!)), "invalid_grant")
          right(yield* revoke(h, "clitr_never_issued"))

          const again = yield* login(h, user.id)
          right(yield* revoke(h, again.access_token))
          const viaAccess = yield* authenticate(h, again.access_token)
          assert.strictEqual(Either.isLeft(viaAccess) && viaAccess.left.reason, "Revoked")
        })
      )

      it.scoped("access tokens live 72 hours; refreshing gives a fresh 72", () =>
        Effect.gen(function* () {
          const h = yield* harness
          const { user } = yield* person(h)
          const tokens = yield* login(h, user.id)
          yield* TestClock.adjust("71 hours")
          assert.isTrue(Either.isRight(yield* authenticate(h, tokens.access_token)))
          yield* TestClock.adjust("1 hour")
          const expired = yield* authenticate(h, tokens.access_token)
          assert.strictEqual(Either.isLeft(expired) && expired.left.reason, "Expired")
          const renewed = right(yield* refresh(h, tokens.refresh_token!))
          assert.isTrue(Either.isRight(yield* authenticate(h, renewed.access_token)))
        })
      )

      it.scoped("demotion, removal and a switch of the active workspace apply on the very next call", () =>
        Effect.gen(function* () {
          const h = yield* harness
          const { acme, beta, user } = yield* person(h)
          const tokens = yield* login(h, user.id)
          yield* h.store.putMembership(user.id, acme, "viewer")
          assert.strictEqual(right(yield* authenticate(h, tokens.access_token)).role, "viewer")
          yield* h.store.setActiveWorkspace(user.id, beta)
          assert.strictEqual(right(yield* authenticate(h, tokens.access_token)).workspaceId, beta)
          yield* h.store.removeMembership(user.id, beta)
          const none = yield* authenticate(h, tokens.access_token)
          assert.strictEqual(Either.isLeft(none) && none.left.reason, "NoWorkspace")
          yield* h.store.removeMembership(user.id, acme)
          const gone = yield* authenticate(h, tokens.access_token, acme)
          assert.strictEqual(Either.isLeft(gone) && gone.left.reason, "NotAMember")
          yield* h.store.setUserDisabled(user.id, true)
          const disabled = yield* authenticate(h, tokens.access_token, acme)
          assert.strictEqual(Either.isLeft(disabled) && disabled.left.reason, "UserDisabled")
        })
      )

      it.scoped("approval may pick another workspace of the person, which becomes their active one", () =>
        Effect.gen(function* () {
          const h = yield* harness
          const { beta, user } = yield* person(h)
          const device = right(yield* startDeviceFlow(h))
          const foreign = yield* Effect.either(
            h.oauth.approveDevice(user.id, device.user_code, WorkspaceId.make("ws_x"))
          )
          assert.strictEqual(Either.isLeft(foreign) && foreign.left.reason, "NotAMember")
          yield* h.oauth.approveDevice(user.id, device.user_code, beta)
          // A second approval of the same code is refused and switches nothing.
          const { acme } = yield* Effect.map(h.store.listMemberships(user.id), (ms) => ({
            acme: ms.find((m) => m.workspaceId !== beta)!.workspaceId
          }))
          yield* h.store.setActiveWorkspace(user.id, acme)
          const twice = yield* Effect.either(h.oauth.approveDevice(user.id, device.user_code, beta))
          assert.strictEqual(Either.isLeft(twice) && twice.left.reason, "InvalidUserCode")
          assert.strictEqual((yield* h.store.getUser(user.id)).activeWorkspaceId, acme)
          yield* h.store.setActiveWorkspace(user.id, beta)
          const tokens = right(yield* pollToken(h, device.device_code))
          assert.deepStrictEqual(
            [
              right(yield* authenticate(h, tokens.access_token)).workspaceId,
              (yield* h.store.getUser(user.id)).activeWorkspaceId
            ],
            [beta, beta]
          )
        })
      )

      it.scoped("unknown clients, grant types and malformed requests are refused with RFC 6749 errors", () =>
        Effect.gen(function* () {
          const h = yield* harness
          const stranger = yield* startDeviceFlow(h, { client_id: "not-cmdop" })
          assert.isTrue(Either.isLeft(stranger))
          if (Either.isLeft(stranger))
            assert.deepStrictEqual([stranger.left.error, stranger.left.status], ["invalid_client", 401])
          const post = (path: string, body: string, type = "application/x-www-form-urlencoded") =>
            Effect.promise(() =>
              fetch(`${h.issuer}${path}`, { method: "POST", headers: { "content-type": type }, body }).then(
                async (r) => ({
                  status: r.status,
                  cache: r.headers.get("cache-control"),
                  body: (await r.json()) as { readonly error: string }
                })
              )
            )
          const grantType = yield* post("/oauth/token", "client_id=cmdop-cli&grant_type=password")
          assert.deepStrictEqual(
            [grantType.status, grantType.body.error, grantType.cache],
            [400, "unsupported_grant_type", "no-store"]
          )
          const missing = yield* post("/oauth/token", "client_id=cmdop-cli&grant_type=refresh_token")
          assert.strictEqual(missing.body.error, "invalid_request")
          const twice = yield* post("/oauth/token", "client_id=cmdop-cli&client_id=cmdop-cli&grant_type=refresh_token")
          assert.strictEqual(twice.body.error, "invalid_request")
          const json = yield* post("/oauth/token", "{}", "application/json")
          assert.strictEqual(json.body.error, "invalid_request")
          const scope = yield* post("/oauth/device_authorization", "client_id=cmdop-cli&scope=admin")
          assert.strictEqual(scope.body.error, "invalid_scope")
        })
      )
    }
  )

const dir = mkdtempSync(join(tmpdir(), "cmdop-device-flow-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

deviceFlowSuite("memory", AccountStore.layerMemory)
deviceFlowSuite("sqlite", AccountStore.layerSqlite({ path: join(dir, "relay.db") }))
deviceFlowSuite(
  "postgres",
  Layer.unwrapScoped(Effect.map(freshPgSchema("cmdop_accounts_test"), ({ url }) => AccountStore.layerPostgres({ url })))
)
