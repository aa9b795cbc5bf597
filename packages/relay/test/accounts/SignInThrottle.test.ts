/**
 * Password guessing on `/signin`: a wrong password takes one from the source address's budget of refused
 * credentials (`refusalThrottle.ts`, the one gRPC and the share pages use); once it is spent the address's
 * sign-ins are answered 429 with `Retry-After`, the right password included (it is not even hashed), and so are
 * its share pages, since switching paths earns no new budget.
 */
import { REFUSAL_BURST } from "../../src/internal/refusalThrottle.js"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { browser, csrfOf, setup } from "./relayFixture.js"

describe("sign-in throttle", () => {
  it.scoped("wrong passwords spend the source's budget of refusals; past it, sign-ins are 429", () =>
    Effect.gen(function* () {
      const env = yield* setup
      yield* env.person("alice@example.com", env.acme.workspace.id, "owner")
      const page = browser(env.running.httpAddress)
      // Each answer carries a fresh anti-forgery value, as a browser's next attempt would.
      let csrf = csrfOf((yield* page.request("/signin")).text)
      const signIn = (password: string) =>
        Effect.tap(page.request("/signin", { csrf, next: "/cabinet", email: "alice@example.com", password }), (r) => {
          if (r.status === 401) csrf = csrfOf(r.text)
        })
      for (let i = 0; i < REFUSAL_BURST; i++) {
        const wrong = yield* signIn(`wrong password ${i}`)
        assert.strictEqual(wrong.status, 401, `attempt ${i}`)
      }
      const blocked = yield* signIn("correct horse battery staple")
      assert.strictEqual(blocked.status, 429)
      assert.include(blocked.text, "too many failed sign-ins from")
      assert.isTrue(Number(blocked.headers.get("retry-after")) >= 1)
      assert.strictEqual(page.jar.get("cmdop_session"), undefined)
      const share = yield* page.request("/s/not-a-token")
      assert.strictEqual(share.status, 429)
    })
  )
})
