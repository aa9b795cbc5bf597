/**
 * The audit trail has who and when for the account events the other tests do not look at: disabling and enabling
 * a person (the relay host), a failed and a good web sign-in, a sign-out, a device code approved and one denied, a refresh, and a
 * revocation (`cmdop logout`). Each event carries its actor and the clock's time at the moment it happened (the
 * TestClock is moved between steps, so a wrong `at` shows).
 */
import * as AccountStore from "@cmdop/accounts/AccountStore"
import * as Accounts from "@cmdop/accounts/Accounts"
import * as OAuthServer from "@cmdop/accounts/OAuthServer"
import { WorkspaceId } from "@cmdop/domain/Machine"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

const services = Layer.merge(Accounts.layer(), OAuthServer.layer(OAuthServer.defaultConfig("http://relay.test"))).pipe(
  Layer.provideMerge(AccountStore.layerMemory)
)
const acme = WorkspaceId.make("ws_acme")
const password = Redacted.make("correct horse battery staple")

describe("the audit trail: who and when", () => {
  it.effect(
    "disable/enable, a failed and a good sign-in, sign-out, device approved and denied, refresh, revocation",
    () =>
      Effect.gen(function* () {
        const accounts = yield* Accounts.Accounts
        const oauth = yield* OAuthServer.OAuthServer
        const store = yield* AccountStore.AccountStore
        const added = yield* accounts.addMember({
          actor: "relay-host",
          email: "bob@example.com",
          workspaceId: acme,
          role: "member"
        })
        yield* accounts.redeemSignInLink(added.link!.token, password)
        const bob = added.user.id
        const after = yield* Effect.map(store.listAudit({}), (all) => all.length)
        const step = (ms: number) => TestClock.adjust(`${ms} millis`)

        yield* step(1_000)
        yield* accounts.setDisabled(bob, true)
        yield* step(1_000)
        yield* accounts.setDisabled(bob, false)
        yield* step(1_000)
        yield* Effect.either(accounts.signIn("bob@example.com", Redacted.make("not his password at all")))
        const web = yield* accounts.signIn("bob@example.com", password)
        yield* accounts.signOut(web.sessionId)
        yield* step(1_000)
        const denied = yield* oauth.deviceAuthorization({ clientId: "cmdop-cli", scope: undefined })
        yield* oauth.denyDevice(bob, denied.user_code)
        yield* step(1_000)
        const approved = yield* oauth.deviceAuthorization({ clientId: "cmdop-cli", scope: undefined })
        yield* oauth.approveDevice(bob, approved.user_code)
        const tokens = yield* oauth.token({
          grant_type: "urn:ietf:params:oauth:grant-type:device_code",
          device_code: approved.device_code,
          client_id: "cmdop-cli"
        })
        yield* step(1_000)
        const refreshed = yield* oauth.token({
          grant_type: "refresh_token",
          refresh_token: tokens.refresh_token,
          client_id: "cmdop-cli"
        })
        yield* step(1_000)
        yield* oauth.revoke({ token: refreshed.refresh_token, client_id: "cmdop-cli" })

        const trail = (yield* store.listAudit({})).slice(after)
        const base = trail[0]!.at - 1_000
        assert.deepStrictEqual(
          trail.map((e) => [e.actor, e.action, e.at - base]),
          [
            ["relay-host", "user.disabled", 1_000],
            ["relay-host", "user.enabled", 2_000],
            [bob, "login.failed", 3_000],
            [bob, "login.succeeded", 3_000],
            [bob, "logout", 3_000],
            [bob, "device.denied", 4_000],
            [bob, "device.approved", 5_000],
            [bob, "token.issued", 5_000],
            [bob, "token.refreshed", 6_000],
            [bob, "token.revoked", 7_000]
          ]
        )
        assert.deepStrictEqual(
          trail.slice(0, 5).map((e) => e.subject),
          [bob, bob, bob, bob, bob]
        )
        // No secret in the trail: neither the password nor any token.
        const text = JSON.stringify(trail)
        for (const secret of [
          Redacted.value(password),
          tokens.access_token,
          tokens.refresh_token,
          refreshed.refresh_token
        ])
          assert.notInclude(text, secret)
      }).pipe(Effect.provide(services))
  )
})
