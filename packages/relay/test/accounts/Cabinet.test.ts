/**
 * The web cabinet on a real relay (`RelayServer.serveWith`, memory stores, 127.0.0.1): what an owner and a
 * member see and may do, and the refusals: a wrong or missing session cookie, a form without the CSRF token (or
 * with another session's), and ids of another workspace in forms (a workspace to switch to, a machine to
 * connect to, a member to remove).
 */
import * as Accounts from "@cmdop/accounts/Accounts"
import * as AccountStore from "@cmdop/accounts/AccountStore"
import * as Machine from "@cmdop/domain/Machine"
import * as WorkspaceName from "@cmdop/domain/Workspace"
import * as RelayServer from "@cmdop/relay/RelayServer"
import * as RelayStore from "@cmdop/relay/RelayStore"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

/** A tiny browser: one cookie jar, no redirects followed. */
const browser = (base: string) => {
  const jar = new Map<string, string>()
  const request = (path: string, form?: Record<string, string>) =>
    Effect.promise(async () => {
      const headers: Record<string, string> = { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") }
      if (form !== undefined) headers["content-type"] = "application/x-www-form-urlencoded"
      const response = await fetch(base + path, {
        method: form === undefined ? "GET" : "POST",
        headers,
        body: form === undefined ? null : new URLSearchParams(form).toString(),
        redirect: "manual"
      })
      for (const cookie of response.headers.getSetCookie()) {
        const [pair] = cookie.split(";")
        const [name, value] = pair!.split("=")
        jar.set(name!, value!)
      }
      return { status: response.status, text: await response.text(), location: response.headers.get("location") }
    })
  return { request, jar }
}

const csrfOf = (html: string) => /name="csrf" value="([^"]*)"/.exec(html)![1]!

const setup = Effect.gen(function* () {
  const relayStore = yield* Layer.build(RelayStore.layerMemory)
  const accountStore = yield* Layer.build(AccountStore.layerMemory)
  const running = yield* RelayServer.serveWith(
    { grpcPort: 0, httpPort: 0, host: "127.0.0.1", accounts: Layer.succeedContext(accountStore) },
    "memory"
  ).pipe(Effect.provide(relayStore))
  const store = Context.get(relayStore, RelayStore.RelayStore)
  const accounts = yield* Effect.provide(
    Accounts.Accounts,
    Accounts.layer().pipe(Layer.provide(Layer.succeedContext(accountStore)))
  )
  const ws = (name: string) => store.createWorkspace(WorkspaceName.WorkspaceName.make(name))
  const acme = (yield* ws("acme")).workspace
  const gamma = (yield* ws("gamma")).workspace
  /** A person signed in through their link, as a browser. */
  const person = (email: string, workspaceId: Machine.WorkspaceId, role: "owner" | "member" | "viewer") =>
    Effect.gen(function* () {
      const added = yield* accounts.addMember({ actor: "relay-host", email, workspaceId, role })
      const b = browser(running.httpAddress)
      const path = `/signin/${Redacted.value(added.link!.token)}`
      const form = yield* b.request(path)
      const done = yield* b.request(path, { csrf: csrfOf(form.text), password: "correct horse battery staple" })
      assert.strictEqual(done.status, 303)
      return { browser: b, user: added.user }
    })
  return { running, store, accounts, acme, gamma, person }
})

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
