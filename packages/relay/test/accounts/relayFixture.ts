/**
 * A real relay with accounts for the cabinet's tests (`RelayServer.serveWith`, memory stores, HTTP and gRPC on
 * 127.0.0.1:0): two workspaces (acme, gamma), people signed in through their one-time links as tiny browsers
 * (one cookie jar, no redirects followed), and gRPC clients with any bearer credential.
 */
import * as Accounts from "@cmdop/accounts/Accounts"
import * as AccountStore from "@cmdop/accounts/AccountStore"
import type * as Machine from "@cmdop/domain/Machine"
import * as WorkspaceName from "@cmdop/domain/Workspace"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import * as RelayServer from "@cmdop/relay/RelayServer"
import * as RelayStore from "@cmdop/relay/RelayStore"
import { assert } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

export interface Response {
  readonly status: number
  readonly text: string
  readonly location: string | null
  readonly headers: Headers
}

/** A tiny browser: one cookie jar, no redirects followed; `form` posts. */
export const browser = (base: string) => {
  const jar = new Map<string, string>()
  const request = (path: string, form?: Record<string, string>) =>
    Effect.promise(async (): Promise<Response> => {
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
        if (value === "" || /max-age=0/i.test(cookie)) jar.delete(name!)
        else jar.set(name!, value!)
      }
      return {
        status: response.status,
        text: await response.text(),
        location: response.headers.get("location"),
        headers: response.headers
      }
    })
  return { request, jar }
}

export const csrfOf = (html: string) => /name="csrf" value="([^"]*)"/.exec(html)![1]!

/** A gRPC client of the relay with `credential` as its bearer. */
export const client = (server: string, credential: string | Redacted.Redacted<string>, workspace?: string) =>
  RelayClientGrpc.make({
    server,
    apiKey: typeof credential === "string" ? Redacted.make(credential) : credential,
    ...(workspace === undefined ? {} : { workspace })
  })

/** `cmdop login` approved by the person signed in in `page`: the token response. */
export const deviceLogin = (base: string, page: ReturnType<typeof browser>) =>
  Effect.gen(function* () {
    const post = (path: string, body: Record<string, string>) =>
      Effect.promise(async () => {
        const r = await fetch(base + path, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(body).toString()
        })
        return (await r.json()) as Record<string, string>
      })
    const started = yield* post("/oauth/device_authorization", { client_id: "cmdop-cli" })
    const device = yield* page.request(`/device?user_code=${started.user_code}`)
    const approved = yield* page.request("/device", {
      csrf: csrfOf(device.text),
      user_code: started.user_code!,
      action: "approve"
    })
    assert.strictEqual(approved.status, 200)
    const tokens = yield* post("/oauth/token", {
      grant_type: "urn:ietf:params:oauth:grant-type:device_code",
      device_code: started.device_code!,
      client_id: "cmdop-cli"
    })
    assert.isTrue(tokens.access_token?.startsWith("cmdop_"))
    return tokens as { access_token: string; refresh_token: string }
  })

/** A relay with accounts on memory stores, and the relay host's `Accounts` over the same account store. */
export const accountsRelay = Effect.gen(function* () {
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
  return { running, store, accounts, accountStore }
})

export const setup = Effect.gen(function* () {
  const { running, store, accounts, accountStore } = yield* accountsRelay
  const ws = (name: string) => store.createWorkspace(WorkspaceName.WorkspaceName.make(name))
  const acme = yield* ws("acme")
  const gamma = yield* ws("gamma")
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
  return { running, store, accounts, accountStore, acme, gamma, person }
})
