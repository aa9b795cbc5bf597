/**
 * A real OpenID provider for tests: `oidc-provider` on 127.0.0.1 with one confidential client (the relay), its
 * development login and consent pages, and people whose claims the test controls; plus a minimal browser (fetch
 * with a cookie jar, following redirects and submitting those pages) that walks a sign-on to the relay's callback.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import Provider from "oidc-provider"

export const CLIENT_ID = "cmdop-relay"
export const CLIENT_SECRET = Redacted.make("relay-client-secret-for-tests-0123456789")
export const REDIRECT_URI = "http://127.0.0.1:9/sso/callback"

/** A person at the provider: the account id typed at its login page, and their claims. */
export interface Person {
  readonly email: string
  readonly email_verified: boolean
}

/** Starts the provider with `people`; stopped when the scope closes. */
export const startProvider = (people: Readonly<Record<string, Person>>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const server = createServer()
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const provider = new Provider(issuer, {
        clients: [
          {
            client_id: CLIENT_ID,
            client_secret: Redacted.value(CLIENT_SECRET),
            redirect_uris: [REDIRECT_URI],
            response_types: ["code"],
            grant_types: ["authorization_code"]
          }
        ],
        findAccount: (_ctx, id) => {
          const person = people[id]
          return person === undefined ? undefined : { accountId: id, claims: () => ({ sub: id, ...person }) }
        },
        claims: { openid: ["sub"], email: ["email", "email_verified"] },
        cookies: { keys: ["cmdop-accounts-test-cookie-key"] },
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

/**
 * Walks a sign-on as a browser would: from the authorization URL through the provider's login page (as
 * `login`) and consent page, until the provider redirects to the relay's callback; returns that URL.
 */
export const signOnAs = (authorizationUrl: URL, login: string) =>
  Effect.promise(async () => {
    const jar = new Map<string, string>()
    let url = authorizationUrl
    let form: string | undefined
    for (let step = 0; step < 20; step++) {
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
      form = undefined
      const location = response.headers.get("location")
      if (location !== null) {
        const next = new URL(location, url)
        if (next.href.startsWith(REDIRECT_URI)) return next
        url = next
        continue
      }
      const html = await response.text()
      const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]
      if (response.status !== 200 || action === undefined) {
        throw new Error(`the provider answered ${response.status} at ${url.pathname}: ${html.slice(0, 300)}`)
      }
      form = html.includes('name="login"')
        ? new URLSearchParams({ prompt: "login", login, password: "any" }).toString()
        : new URLSearchParams({ prompt: "consent" }).toString()
      url = new URL(action, url)
    }
    throw new Error("the sign-on did not reach the callback in 20 steps")
  })
