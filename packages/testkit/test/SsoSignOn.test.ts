/**
 * Single sign-on wired into a real relay (`RelayServer.serveWith` with `sso`, memory stores, 127.0.0.1): a real
 * OpenID provider (`oidc-provider` with its development login and consent pages) on loopback, walked by a small
 * fetch-based browser. An invited person's sign-on through `/sso/start` and `/sso/callback` ends in the cabinet
 * with a session cookie; a callback without the attempt's cookie is refused; the sign-in page offers the link.
 * An owner decides who may join in the cabinet, in Chromium: an allowed email domain (its people join by signing
 * on, with the rule's role, until the owner removes it) and invited emails.
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
import { chromium } from "playwright-core"
import * as fs from "node:fs"

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

/**
 * A relay on memory stores whose sign-on goes to the provider at `issuer`, with workspace "acme"; `accounts` adds
 * people to it as the relay host does.
 */
const ssoRelay = (issuer: string) =>
  Effect.gen(function* () {
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
          issuer,
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
    return { running, acme, accounts }
  })

describe("single sign-on on the relay", () => {
  it.scopedLive("an invited person signs on through the provider and lands in the cabinet", () =>
    Effect.gen(function* () {
      const provider = yield* startProvider({ alice: { email: "alice@example.com", email_verified: true } })
      const { running, acme, accounts } = yield* ssoRelay(provider.issuer)
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

const CHROMIUM = "/usr/bin/chromium"

const promise = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (e) => new Error(`${what}: ${e instanceof Error ? e.message : String(e)}`) })

describe("who may join, decided by owners in the cabinet", () => {
  it.scopedLive(
    "an owner allows a domain and invites an email in Chromium; those people sign on, others do not",
    () =>
      Effect.gen(function* () {
        if (!fs.existsSync(CHROMIUM)) assert.fail(`${CHROMIUM} is missing: apt-get install chromium`)
        const provider = yield* startProvider({
          dave: { email: "dave@example.org", email_verified: true },
          erin: { email: "erin@example.org", email_verified: true },
          frank: { email: "frank@other.net", email_verified: true },
          gina: { email: "gina@other.net", email_verified: true }
        })
        const { running, acme, accounts } = yield* ssoRelay(provider.issuer)
        const added = yield* accounts.addMember({
          actor: "relay-host",
          email: "alice@example.com",
          workspaceId: acme.workspace.id,
          role: "owner"
        })
        const relay = running.httpAddress

        /** A new person's sign-on through the provider: the callback's status and, when let in, their cabinet. */
        const signOn = (login: string) =>
          Effect.promise(async () => {
            const b = browser()
            const start = await b.request(`${relay}/sso/start`)
            const callback = await b.signOnAs(new URL(start.location!), login)
            const done = await b.request(new URL(callback.pathname + callback.search, relay))
            const cabinet = done.status === 303 ? (await b.request(`${relay}/cabinet`)).html : done.html
            return { status: done.status, cabinet }
          })

        const chrome = yield* Effect.acquireRelease(
          promise("launch chromium", () =>
            chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--headless", "--disable-gpu"] })
          ),
          (b) => Effect.promise(() => b.close())
        )
        const page = yield* promise("open a page", () => chrome.newPage())
        yield* promise("open alice's link", () => page.goto(`${relay}/signin/${Redacted.value(added.link!.token)}`))
        yield* promise("type a password", () => page.fill("input[name=password]", "correct horse battery staple"))
        yield* promise("submit", () => Promise.all([page.waitForURL(`${relay}/cabinet`), page.click("button")]))

        // Nobody of example.org may join yet.
        const early = yield* signOn("dave")
        assert.strictEqual(early.status, 403)
        assert.include(early.cabinet, "no workspace on this relay has invited dave@example.org")

        // A domain that is not one is refused with the reason; nothing is stored.
        yield* promise("type a bad domain", () =>
          page.fill("form[action='/cabinet/domains/set'] input[name=domain]", "not a domain")
        )
        yield* promise("allow it", () =>
          Promise.all([page.waitForURL(`${relay}/cabinet/domains/set`), page.click("text=Allow the domain")])
        )
        assert.include(yield* promise("the refusal", () => page.textContent(".message")), "is not an email domain")
        yield* promise("back", () => page.goto(`${relay}/cabinet`))

        // The owner allows example.org (as viewers) and invites frank@other.net as a member.
        yield* promise("type the domain", () =>
          page.fill("form[action='/cabinet/domains/set'] input[name=domain]", "@Example.org")
        )
        yield* promise("pick viewer", () =>
          page.selectOption("form[action='/cabinet/domains/set'] select[name=role]", "viewer")
        )
        yield* promise("allow the domain", () =>
          Promise.all([page.waitForURL(`${relay}/cabinet`), page.click("text=Allow the domain")])
        )
        assert.include(yield* promise("the rules", () => page.textContent("#domains")), "@example.org")
        yield* promise("type frank's email", () => page.fill("input[name=email]", "frank@other.net"))
        yield* promise("invite", () =>
          Promise.all([page.waitForURL(`${relay}/cabinet/members/add`), page.click("text=Invite, or change the role")])
        )
        yield* promise("back to the cabinet", () => page.goto(`${relay}/cabinet`))
        assert.include(yield* promise("the members", () => page.textContent("#members")), "frank@other.net")

        const dave = yield* signOn("dave")
        assert.strictEqual(dave.status, 303)
        assert.match(dave.cabinet, /<td>acme<\/td><td>viewer<\/td>/)
        const frank = yield* signOn("frank")
        assert.strictEqual(frank.status, 303)
        assert.match(frank.cabinet, /<td>acme<\/td><td>member<\/td>/)
        // Invited is one email, not its domain.
        assert.strictEqual((yield* signOn("gina")).status, 403)

        // The owner removes the rule: the next new person of example.org is refused; dave stays a member.
        yield* promise("remove the rule", () =>
          Promise.all([page.waitForURL(`${relay}/cabinet`), page.click("#domains button:has-text('Remove')")])
        )
        assert.notInclude(yield* promise("the rules", () => page.textContent("#domains")), "example.org")
        assert.strictEqual((yield* signOn("erin")).status, 403)
        assert.include(yield* promise("the members", () => page.textContent("#members")), "dave@example.org")
        const trail = yield* accounts.auditTrail("relay-host", acme.workspace.id)
        assert.strictEqual(trail.filter((e) => e.action === "domain-rule.changed").length, 2)
      }),
    120_000
  )
})
