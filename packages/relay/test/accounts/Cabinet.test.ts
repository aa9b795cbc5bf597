/**
 * The web cabinet on a real relay (`RelayServer.serveWith`, memory stores, 127.0.0.1): what an owner and a
 * member see and may do, and the refusals: a wrong or missing session cookie, a form without the CSRF token (or
 * with another session's), and ids of another workspace in forms (a workspace to switch to, a machine to
 * connect to, a member to remove).
 */
import * as Machine from "@cmdop/domain/Machine"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { browser, csrfOf, setup as relaySetup } from "./relayFixture.js"

/** The relay of `relayFixture`, with acme and gamma as the workspaces themselves. */
const setup = Effect.map(relaySetup, (env) => ({ ...env, acme: env.acme.workspace, gamma: env.gamma.workspace }))

describe("web cabinet", () => {
  it.scoped("an owner sees machines, links, the key and members; a member sees no owner sections", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const alice = yield* env.person("alice@example.com", env.acme.id, "owner")
      const bob = yield* env.person("bob@example.com", env.acme.id, "member")
      const ownerView = yield* alice.browser.request("/cabinet")
      assert.strictEqual(ownerView.status, 200)
      assert.include(ownerView.text, `id="machines"`)
      assert.include(ownerView.text, `id="shares"`)
      assert.include(ownerView.text, `id="members"`)
      assert.include(ownerView.text, "bob@example.com")
      const memberView = yield* bob.browser.request("/cabinet")
      assert.include(memberView.text, `id="machines"`)
      assert.notInclude(memberView.text, `id="members"`)
      assert.notInclude(memberView.text, "Rotate the API key")

      // A member cannot rotate the key or manage members, even with a valid form.
      const bobCsrf = csrfOf(memberView.text)
      assert.strictEqual((yield* bob.browser.request("/cabinet/keys/rotate", { csrf: bobCsrf })).status, 403)
      const bobAdds = yield* bob.browser.request("/cabinet/members/add", {
        csrf: bobCsrf,
        email: "eve@example.com",
        role: "owner"
      })
      assert.strictEqual(bobAdds.status, 403)

      // The owner rotates the key: shown once, and the workspace's key generation moved on.
      const before = yield* env.store.currentKeyGeneration(env.acme.id)
      const rotated = yield* alice.browser.request("/cabinet/keys/rotate", { csrf: csrfOf(ownerView.text) })
      assert.strictEqual(rotated.status, 200)
      assert.match(rotated.text, /id="new-key">ck_/)
      assert.strictEqual(yield* env.store.currentKeyGeneration(env.acme.id), before + 1)
      // She adds a new person (a one-time link is shown) and removes bob.
      const added = yield* alice.browser.request("/cabinet/members/add", {
        csrf: csrfOf(ownerView.text),
        email: "carol@example.com",
        role: "viewer"
      })
      assert.include(added.text, "/signin/")
      const bobId = (yield* env.accounts.listMembers("relay-host", env.acme.id)).find(
        (m) => m.user.email === "bob@example.com"
      )!.user.id
      const removed = yield* alice.browser.request("/cabinet/members/remove", {
        csrf: csrfOf(ownerView.text),
        user: bobId
      })
      assert.strictEqual(removed.status, 303)
      // Removal ends bob's reach at once: his cabinet has no active workspace left to act in.
      const bobAfter = yield* bob.browser.request("/cabinet/members/add", {
        csrf: bobCsrf,
        email: "x@example.com",
        role: "viewer"
      })
      assert.strictEqual(bobAfter.status, 403)
      const trail = yield* env.accounts.auditTrail("relay-host", env.acme.id)
      assert.isTrue(trail.some((e) => e.action === "key.rotated"))
      assert.isTrue(trail.some((e) => e.action === "member.removed"))
    })
  )

  it.scoped("refuses wrong cookies, missing or foreign CSRF tokens, and another workspace's ids", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const alice = yield* env.person("alice@example.com", env.acme.id, "owner")
      const mallory = yield* env.person("mallory@example.com", env.gamma.id, "owner")
      const view = yield* alice.browser.request("/cabinet")
      const csrf = csrfOf(view.text)

      // No cookie, or a forged one: sent to sign in, nothing done.
      const stranger = browser(env.running.httpAddress)
      assert.strictEqual((yield* stranger.request("/cabinet")).status, 303)
      stranger.jar.set("cmdop_session", "forged-session-id")
      const forged = yield* stranger.request("/cabinet/keys/rotate", { csrf })
      assert.strictEqual(forged.status, 303)
      assert.strictEqual(forged.location, "/signin?next=%2Fcabinet")

      // Her own cookie without the token, or with mallory's token: refused.
      const generation = yield* env.store.currentKeyGeneration(env.acme.id)
      assert.strictEqual((yield* alice.browser.request("/cabinet/keys/rotate", {})).status, 403)
      const malloryCsrf = csrfOf((yield* mallory.browser.request("/cabinet")).text)
      assert.strictEqual((yield* alice.browser.request("/cabinet/keys/rotate", { csrf: malloryCsrf })).status, 403)
      assert.strictEqual(yield* env.store.currentKeyGeneration(env.acme.id), generation)

      // Another workspace's ids: gamma to switch to, gamma's machine to connect to, gamma's owner to remove.
      const switched = yield* alice.browser.request("/cabinet/active", { csrf, workspace: env.gamma.id })
      assert.strictEqual(switched.status, 403)
      const machine = yield* env.store.registerMachine({
        id: Machine.MachineId.make("7b0c7d3e-1f52-4c8e-9a53-1d2f9e6b4a10"),
        workspaceId: env.gamma.id,
        hostname: Machine.Hostname.make("gamma-box"),
        name: "gamma-box",
        os: "linux",
        agentVersion: "test",
        secretHash: "0".repeat(64)
      })
      const connect = yield* alice.browser.request("/cabinet/connect", { csrf, machine: machine.id })
      assert.strictEqual(connect.status, 404)
      const removal = yield* alice.browser.request("/cabinet/members/remove", { csrf, user: mallory.user.id })
      assert.strictEqual(removal.status, 403)
      assert.strictEqual((yield* env.accounts.listMembers("relay-host", env.gamma.id)).length, 1)
      assert.include((yield* alice.browser.request("/cabinet")).text, "acme")
    })
  )
})
