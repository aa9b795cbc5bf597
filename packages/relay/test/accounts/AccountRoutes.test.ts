/**
 * Accounts wired into a real relay (`RelayServer.serveWith`, memory stores, HTTP and gRPC on 127.0.0.1:0): a
 * person sets a password through a sign-in link, approves a device login on `/device`, and the access token works
 * as a gRPC bearer with their role (a viewer lists but cannot reach machines; another workspace per call only
 * where they are a member); `/apix/machines/workspaces/` lists their workspaces; forms without the CSRF token or
 * with another person's cookie are refused; signing out and revoking end access.
 */
import * as WorkspaceName from "@cmdop/domain/Workspace"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { accountsRelay } from "./relayFixture.js"

/** A tiny browser: one cookie jar, no redirects followed. */
const browser = (base: string) => {
  const jar = new Map<string, string>()
  const request = async (path: string, init: { method?: string; form?: Record<string, string> } = {}) => {
    const headers: Record<string, string> = {
      cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ")
    }
    let body: string | null = null
    if (init.form !== undefined) {
      headers["content-type"] = "application/x-www-form-urlencoded"
      body = new URLSearchParams(init.form).toString()
    }
    const response = await fetch(base + path, { method: init.method ?? "GET", headers, body, redirect: "manual" })
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(";")
      const [name, value] = pair!.split("=")
      if (value === "" || /max-age=0/i.test(cookie)) jar.delete(name!)
      else jar.set(name!, value!)
    }
    return { status: response.status, text: await response.text(), headers: response.headers }
  }
  return { request, jar }
}

const field = (html: string, name: string) => {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html)
  assert.isNotNull(match, `no ${name} field`)
  return match![1]!
}

const setup = Effect.gen(function* () {
  const { running, store, accounts } = yield* accountsRelay
  const acme = yield* store.createWorkspace(WorkspaceName.WorkspaceName.make("acme"))
  const beta = yield* store.createWorkspace(WorkspaceName.WorkspaceName.make("beta"))
  return { running, store, accounts, acme, beta }
})

/** Sets alice's password through her link and approves a device login; returns the token response. */
const loginAlice = (env: Effect.Effect.Success<typeof setup>) =>
  Effect.gen(function* () {
    const { running, accounts, acme } = env
    const added = yield* accounts.addMember({
      actor: "relay-host",
      email: "alice@example.com",
      workspaceId: acme.workspace.id,
      role: "owner"
    })
    const page = browser(running.httpAddress)
    const linkPath = `/signin/${Redacted.value(added.link!.token)}`
    const form = yield* Effect.promise(() => page.request(linkPath))
    assert.strictEqual(form.status, 200)
    assert.include(form.headers.get("content-security-policy") ?? "", "default-src 'none'")
    const set = yield* Effect.promise(() =>
      page.request(linkPath, {
        method: "POST",
        form: { csrf: field(form.text, "csrf"), password: "correct horse battery staple" }
      })
    )
    assert.strictEqual(set.status, 303)
    assert.isTrue(page.jar.has("cmdop_session"))
    const started = yield* Effect.promise(async () => {
      const r = await fetch(`${running.httpAddress}/oauth/device_authorization`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "client_id=cmdop-cli"
      })
      return (await r.json()) as { device_code: string; user_code: string; verification_uri_complete: string }
    })
    assert.strictEqual(started.verification_uri_complete.startsWith(`${running.httpAddress}/device`), true)
    const device = yield* Effect.promise(() => page.request(`/device?user_code=${started.user_code}`))
    assert.strictEqual(device.status, 200)
    const csrf = field(device.text, "csrf")
    const forged = yield* Effect.promise(() =>
      page.request("/device", { method: "POST", form: { user_code: started.user_code, action: "approve" } })
    )
    assert.strictEqual(forged.status, 403)
    const approved = yield* Effect.promise(() =>
      page.request("/device", { method: "POST", form: { csrf, user_code: started.user_code, action: "approve" } })
    )
    assert.strictEqual(approved.status, 200)
    assert.include(approved.text, "approved")
    const tokens = yield* Effect.promise(async () => {
      const r = await fetch(`${running.httpAddress}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "urn:ietf:params:oauth:grant-type:device_code",
          device_code: started.device_code,
          client_id: "cmdop-cli"
        }).toString()
      })
      return (await r.json()) as { access_token: string; refresh_token: string }
    })
    assert.isTrue(tokens.access_token.startsWith("cmdop_"))
    return { tokens, page, user: added.user }
  })

const client = (server: string, token: string, workspace?: string) =>
  RelayClientGrpc.make({
    server,
    apiKey: Redacted.make(token),
    ...(workspace === undefined ? {} : { workspace })
  })

describe("accounts on the relay", () => {
  it.scoped("a person signs in through the link, approves cmdop login, and calls gRPC with the token", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const { tokens } = yield* loginAlice(env)
      const rpc = yield* client(env.running.grpcAddress, tokens.access_token)
      const who = yield* rpc.whoami
      assert.deepStrictEqual([who.kind, who.principal, who.workspaceName], ["user", "alice@example.com", "acme"])
      const listed = yield* rpc.listMachines()
      assert.deepStrictEqual(listed.machines, [])

      const api = yield* Effect.promise(async () => {
        const r = await fetch(`${env.running.httpAddress}/apix/machines/workspaces/`, {
          headers: { authorization: `Bearer ${tokens.access_token}` }
        })
        return { status: r.status, body: (await r.json()) as { workspaces: Array<Record<string, unknown>> } }
      })
      assert.strictEqual(api.status, 200)
      assert.deepStrictEqual(api.body.workspaces, [
        { id: env.acme.workspace.id, name: "acme", role: "owner", active: true }
      ])
      const anonymous = yield* Effect.promise(() =>
        fetch(`${env.running.httpAddress}/apix/machines/workspaces/`).then((r) => r.status)
      )
      assert.strictEqual(anonymous, 401)
    })
  )

  it.scoped("roles: a viewer lists but cannot reach; another workspace per call only as a member of it", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const { tokens } = yield* loginAlice(env)
      // Not a member of beta yet: asking for it per call is refused.
      const outsider = yield* client(env.running.grpcAddress, tokens.access_token, "beta")
      const refused = yield* Effect.flip(outsider.whoami)
      assert.strictEqual(refused._tag, "AccessError")
      assert.include(refused.message, "you are not a member of workspace beta;")
      // A workspace that does not exist gets the very same answer (names and ids cannot be probed), and a token
      // that is not valid is refused as such, whatever it asks for.
      const unknown = yield* Effect.flip((yield* client(env.running.grpcAddress, tokens.access_token, "nope")).whoami)
      assert.strictEqual(unknown.message, refused.message.replace("beta", "nope"))
      for (const asked of ["beta", "nope"]) {
        const forged = yield* Effect.flip((yield* client(env.running.grpcAddress, "cmdop_forged", asked)).whoami)
        assert.strictEqual(forged._tag === "AccessError" && forged.reason, "Unauthenticated", asked)
      }

      yield* env.accounts.addMember({
        actor: "relay-host",
        email: "alice@example.com",
        workspaceId: env.beta.workspace.id,
        role: "viewer"
      })
      // Refusals are never cached, so the new membership applies at once.
      const viewer = yield* client(env.running.grpcAddress, tokens.access_token, "beta")
      const who = yield* viewer.whoami
      assert.strictEqual(who.workspaceName, "beta")
      yield* viewer.listMachines()
      const reach = yield* Effect.flip(Stream.runDrain(viewer.exec({ machine: "anything", argv: ["true"] })))
      assert.strictEqual(reach._tag, "AccessError")
      assert.include(reach.message, "a viewer of workspace beta cannot reach machines")
      const share = yield* Effect.flip(viewer.createShare("anything", 60))
      assert.strictEqual(share._tag, "AccessError")
      assert.include(share.message, "viewer")
      // In her active workspace she is an owner: the same name is simply not found there.
      const owner = yield* client(env.running.grpcAddress, tokens.access_token)
      const missing = yield* Effect.flip(Stream.runDrain(owner.exec({ machine: "anything", argv: ["true"] })))
      assert.strictEqual(missing._tag, "MachineError")
    })
  )

  it.scoped("sign-out needs the CSRF token, and revoking the login ends gRPC access", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const { tokens, page } = yield* loginAlice(env)
      const noCsrf = yield* Effect.promise(() => page.request("/signout", { method: "POST", form: {} }))
      assert.strictEqual(noCsrf.status, 403)
      const cabinet = yield* Effect.promise(() => page.request("/cabinet"))
      assert.strictEqual(cabinet.status, 200)
      const stranger = browser(env.running.httpAddress)
      stranger.jar.set("cmdop_session", "not-a-session")
      const refused = yield* Effect.promise(() => stranger.request("/cabinet"))
      assert.strictEqual(refused.status, 303)
      const out = yield* Effect.promise(() =>
        page.request("/signout", { method: "POST", form: { csrf: field(cabinet.text, "csrf") } })
      )
      assert.strictEqual(out.status, 303)
      assert.strictEqual((yield* Effect.promise(() => page.request("/cabinet"))).status, 303)

      const rpc = yield* client(env.running.grpcAddress, tokens.access_token)
      assert.strictEqual((yield* rpc.whoami).principal, "alice@example.com")
      yield* Effect.promise(() =>
        fetch(`${env.running.httpAddress}/oauth/revoke`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ token: tokens.refresh_token, client_id: "cmdop-cli" }).toString()
        })
      )
      // The relay keeps no cache of a login's check: the very next call on the same connection sees the revocation.
      const gone = yield* Effect.flip(rpc.whoami)
      assert.strictEqual(gone._tag, "AccessError")
      assert.include(gone.message, "cmdop login")
    })
  )
})
