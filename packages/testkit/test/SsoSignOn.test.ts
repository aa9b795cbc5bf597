/**
 * Single sign-on wired into a real relay (`RelayServer.serveWith` with `sso`, memory stores, 127.0.0.1): a real
 * OpenID provider (`oidc-provider` with its development login and consent pages) on loopback, walked by a small
 * fetch-based browser. An invited person's sign-on through `/sso/start` and `/sso/callback` ends in the cabinet
 * with a session cookie; a callback without the attempt's cookie is refused; the sign-in page offers the link.
 */
import * as Accounts from "@cmdop/accounts/Accounts"
import * as AccountStore from "@cmdop/accounts/AccountStore"
import * as WorkspaceName from "@cmdop/domain/Workspace"
import * as RelayServer from "@cmdop/relay/RelayServer"
import * as RelayStore from "@cmdop/relay/RelayStore"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import Provider from "oidc-provider"

const CLIENT_ID = "cmdop-relay"
const CLIENT_SECRET = "relay-client-secret-for-tests-0123456789"
/** The relay's advertised public URL (the provider only knows this callback); requests go to the bound port. */
const PUBLIC = "http://127.0.0.1:9"

const startProvider = (people: Readonly<Record<string, { email: string; email_verified: boolean }>>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const server = createServer()
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const provider = new Provider(issuer, {
        clients: [
          {
            client_id: CLIENT_ID,
            client_secret: CLIENT_SECRET,
            redirect_uris: [`${PUBLIC}/sso/callback`],
            response_types: ["code"],
            grant_types: ["authorization_code"]
          }
        ],
        findAccount: (_ctx, id) => {
          const person = people[id]
          return person === undefined ? undefined : { accountId: id, claims: () => ({ sub: id, ...person }) }
        },
        claims: { openid: ["sub"], email: ["email", "email_verified"] },
        cookies: { keys: ["cmdop-testkit-cookie-key"] },
        features: { devInteractions: { enabled: true } }
      })
      server.on("request", provider.callback())
      return { server, issuer }
    }),
    ({ server }) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections()
            server.close(() => resolve())
          })
      )
  )

/** One browser: a cookie jar across hosts (enough for loopback), redirects not followed. */
const browser = () => {
  const jar = new Map<string, string>()
  const request = async (url: URL | string, form?: string) => {
    const response = await fetch(url, {
      method: form === undefined ? "GET" : "POST",
      redirect: "manual",
      headers: {
        cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; "),
        ...(form === undefined ? {} : { "content-type": "application/x-www-form-urlencoded" })
      },
      ...(form === undefined ? {} : { body: form })
    })
    for (const cookie of response.headers.getSetCookie()) {
      const pair = cookie.split(";")[0]!
      jar.set(pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1))
    }
    return { status: response.status, location: response.headers.get("location"), html: await response.text() }
  }
  /** From the authorization URL through the provider's login and consent pages to the relay's callback URL. */
  const signOnAs = async (authorizationUrl: URL, login: string) => {
    let url = authorizationUrl
    let form: string | undefined
    for (let step = 0; step < 20; step++) {
      const r = await request(url, form)
      form = undefined
      if (r.location !== null) {
        const next = new URL(r.location, url)
        if (next.href.startsWith(`${PUBLIC}/sso/callback`)) return next
        url = next
        continue
      }
      const action = /<form[^>]*action="([^"]+)"/.exec(r.html)?.[1]
      if (r.status !== 200 || action === undefined) throw new Error(`provider answered ${r.status}: ${r.html}`)
      form = r.html.includes('name="login"')
        ? new URLSearchParams({ prompt: "login", login, password: "any" }).toString()
        : new URLSearchParams({ prompt: "consent" }).toString()
      url = new URL(action, url)
    }
    throw new Error("the sign-on did not reach the callback")
  }
  return { request, signOnAs, jar }
}

describe("single sign-on on the relay", () => {
  it.scopedLive("an invited person signs on through the provider and lands in the cabinet", () =>
    Effect.gen(function* () {
      const provider = yield* startProvider({ alice: { email: "alice@example.com", email_verified: true } })
      const relayStore = yield* Layer.build(RelayStore.layerMemory)
      const accountStore = yield* Layer.build(AccountStore.layerMemory)
      const running = yield* RelayServer.serveWith(
        {
          grpcPort: 0,
          httpPort: 0,
          host: "127.0.0.1",
          publicUrl: PUBLIC,
          accounts: Layer.succeedContext(accountStore),
          sso: {
            issuer: provider.issuer,
            clientId: CLIENT_ID,
            clientSecret: Redacted.make(CLIENT_SECRET),
            allowInsecureRequests: true
          }
        },
        "memory"
      ).pipe(Effect.provide(relayStore))
      const acme = yield* Context.get(relayStore, RelayStore.RelayStore).createWorkspace(
        WorkspaceName.WorkspaceName.make("acme")
      )
      const accounts = yield* Effect.provide(
        Accounts.Accounts,
        Accounts.layer().pipe(Layer.provide(Layer.succeedContext(accountStore)))
      )
      yield* accounts.addMember({
        actor: "relay-host",
        email: "alice@example.com",
        workspaceId: acme.workspace.id,
        role: "member"
      })
      const relay = running.httpAddress
      const b = browser()
      const signInPage = yield* Effect.promise(() => b.request(`${relay}/signin`))
      assert.include(signInPage.html, `href="/sso/start"`)

      const start = yield* Effect.promise(() => b.request(`${relay}/sso/start`))
      assert.strictEqual(start.status, 303)
      assert.isTrue(b.jar.has("cmdop_sso"))
      const callback = yield* Effect.promise(() => b.signOnAs(new URL(start.location!), "alice"))
      const atRelay = new URL(callback.pathname + callback.search, relay)

      // The same callback from a browser that did not start this sign-on is refused.
      const stranger = browser()
      const refused = yield* Effect.promise(() => stranger.request(atRelay))
      assert.strictEqual(refused.status, 400)

      const done = yield* Effect.promise(() => b.request(atRelay))
      assert.strictEqual(done.status, 303)
      assert.strictEqual(done.location, "/cabinet")
      const cabinet = yield* Effect.promise(() => b.request(`${relay}/cabinet`))
      assert.strictEqual(cabinet.status, 200)
      assert.include(cabinet.html, "alice@example.com")
      assert.include(cabinet.html, "acme")
      // The attempt is used once: replaying the callback is refused.
      const replay = yield* Effect.promise(() => b.request(atRelay))
      assert.strictEqual(replay.status, 400)
    })
  )
})
