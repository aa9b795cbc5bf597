/**
 * API keys in the web cabinet, on a real relay: an owner makes named keys (each shown once, then listed masked),
 * a new key works over gRPC at once, revoking one refuses its very next call and leaves the others; rotating
 * retires them all. Members cannot touch keys; forms without the CSRF token or naming another workspace's key
 * are refused and change nothing; every change is in the audit trail.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { client, csrfOf, setup } from "./relayFixture.js"

const newKeyOf = (html: string) => /id="new-key">(ck_[^<]+)</.exec(html)![1]!

describe("API keys in the web cabinet", () => {
  it.scoped("an owner creates named keys (shown once, masked after) and revokes one: its next call is refused", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const alice = yield* env.person("alice@example.com", env.acme.workspace.id, "owner")
      const view = yield* alice.browser.request("/cabinet")
      const csrf = csrfOf(view.text)
      assert.include(view.text, `id="keys"`)

      const created = yield* alice.browser.request("/cabinet/keys/create", { csrf, name: "ci" })
      assert.strictEqual(created.status, 200)
      assert.include(created.headers.get("content-security-policy") ?? "", "default-src 'none'")
      const ci = newKeyOf(created.text)
      const listed = yield* alice.browser.request("/cabinet")
      assert.include(listed.text, `${ci.slice(0, 12)}…`)
      assert.notInclude(listed.text, ci.slice(12))
      assert.include(listed.text, "<td>ci</td>")
      assert.include(listed.text, "<td>default</td>")

      const rpc = yield* client(env.running.grpcAddress, ci)
      assert.strictEqual((yield* rpc.whoami).workspaceName, "acme")
      const ciId = (yield* env.store.listKeys("acme")).find((k) => k.name === "ci")!.id
      const revoked = yield* alice.browser.request("/cabinet/keys/revoke", { csrf, key: ciId })
      assert.strictEqual(revoked.status, 303)
      // The very next call with the same client (same channel) is refused; the first key goes on.
      const refused = yield* Effect.flip(rpc.whoami)
      assert.strictEqual(refused._tag, "AccessError")
      assert.include(refused.message, "does not accept key")
      const first = yield* client(env.running.grpcAddress, env.acme.apiKey)
      assert.strictEqual((yield* first.whoami).workspaceName, "acme")
      assert.notInclude((yield* alice.browser.request("/cabinet")).text, "<td>ci</td>")

      // Rotating retires every key, and issues one shown once.
      const rotated = yield* alice.browser.request("/cabinet/keys/rotate", { csrf })
      const fresh = newKeyOf(rotated.text)
      assert.strictEqual((yield* Effect.flip(first.whoami))._tag, "AccessError")
      assert.strictEqual((yield* (yield* client(env.running.grpcAddress, fresh)).whoami).workspaceName, "acme")

      const trail = yield* env.accounts.auditTrail("relay-host", env.acme.workspace.id)
      assert.includeMembers(
        trail.map((e) => e.action),
        ["key.created", "key.revoked", "key.rotated"]
      )
      assert.isFalse(trail.some((e) => e.detail.includes(ci) || e.detail.includes(fresh)))
    })
  )

  it.scoped("members, missing CSRF tokens, bad names and another workspace's key are refused; nothing changes", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const alice = yield* env.person("alice@example.com", env.acme.workspace.id, "owner")
      const bob = yield* env.person("bob@example.com", env.acme.workspace.id, "member")
      const csrf = csrfOf((yield* alice.browser.request("/cabinet")).text)
      const bobView = yield* bob.browser.request("/cabinet")
      assert.notInclude(bobView.text, `id="keys"`)
      const bobCsrf = csrfOf(bobView.text)
      const [acmeKey] = yield* env.store.listKeys("acme")
      const [gammaKey] = yield* env.store.listKeys("gamma")

      assert.strictEqual((yield* bob.browser.request("/cabinet/keys/create", { csrf: bobCsrf, name: "x" })).status, 403)
      const bobRevokes = yield* bob.browser.request("/cabinet/keys/revoke", { csrf: bobCsrf, key: acmeKey!.id })
      assert.strictEqual(bobRevokes.status, 403)
      assert.strictEqual((yield* alice.browser.request("/cabinet/keys/create", { name: "ci" })).status, 403)
      assert.strictEqual((yield* alice.browser.request("/cabinet/keys/revoke", { key: acmeKey!.id })).status, 403)
      const bad = yield* alice.browser.request("/cabinet/keys/create", { csrf, name: "has space" })
      assert.strictEqual(bad.status, 400)
      assert.include(bad.text, "1 to 64 letters")
      const taken = yield* alice.browser.request("/cabinet/keys/create", { csrf, name: "default" })
      assert.strictEqual(taken.status, 409)
      // gamma's key id in acme's owner's form: not found, and still live.
      const foreign = yield* alice.browser.request("/cabinet/keys/revoke", { csrf, key: gammaKey!.id })
      assert.strictEqual(foreign.status, 404)
      // A name where the form wants an id is not looked up either.
      assert.strictEqual((yield* alice.browser.request("/cabinet/keys/revoke", { csrf, key: "default" })).status, 404)
      assert.deepStrictEqual(
        (yield* env.store.listKeys("gamma")).map((k) => k.id),
        [gammaKey!.id]
      )
      assert.deepStrictEqual(
        (yield* env.store.listKeys("acme")).map((k) => k.id),
        [acmeKey!.id]
      )
      assert.strictEqual(
        (yield* (yield* client(env.running.grpcAddress, env.gamma.apiKey)).whoami).workspaceName,
        "gamma"
      )
    })
  )
})
