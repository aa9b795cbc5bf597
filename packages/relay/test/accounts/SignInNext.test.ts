/**
 * Where `/signin` sends a person after a password sign-in: the `next` path of this site, and `/cabinet` for
 * anything else — another host (`//host`, a full URL), and a path with control characters or spaces, which a
 * browser would read as another host (it drops tabs and newlines: `/<TAB>/evil.example` is `//evil.example`) or
 * which a redirect header cannot carry (the sign-in then failed with a bare 500).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { browser, csrfOf, setup } from "./relayFixture.js"

describe("the sign-in page's next", () => {
  it.scoped("goes on to a path of this site, and to /cabinet for anything else", () =>
    Effect.gen(function* () {
      const env = yield* setup
      yield* env.person("alice@example.com", env.acme.workspace.id, "owner")
      const signIn = (next: string) =>
        Effect.gen(function* () {
          const page = browser(env.running.httpAddress)
          const form = yield* page.request(`/signin?next=${encodeURIComponent(next)}`)
          return yield* page.request("/signin", {
            csrf: csrfOf(form.text),
            next,
            email: "alice@example.com",
            password: "correct horse battery staple"
          })
        })
      const kept = yield* signIn("/device?user_code=WDJB-MJHT")
      assert.strictEqual(kept.status, 303)
      assert.strictEqual(kept.location, "/device?user_code=WDJB-MJHT")
      for (const next of [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/cabinet\r\nset-cookie: x=1",
        "/\u001bx",
        "/ /evil.example"
      ]) {
        const r = yield* signIn(next)
        assert.strictEqual(r.status, 303, JSON.stringify(next))
        assert.strictEqual(r.location, "/cabinet", JSON.stringify(next))
      }
    })
  )
})
