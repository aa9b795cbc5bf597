/**
 * `cmdop relay serve`, then opening its HTTP port in a browser: `/` is a small page saying it is a cmdop relay,
 * where the CLI connects (the gRPC address, with the command line to use) and how to sign in.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { live as world } from "./World.js"

describe("the relay's HTTP port", () => {
  it.scopedLive("/ says what it is, where the CLI connects, and where to sign in", () =>
    Effect.gen(function* () {
      const w = yield* world
      const res = yield* Effect.promise(() => fetch(`${w.shareBase}/`))
      assert.strictEqual(res.status, 200)
      assert.match(res.headers.get("content-type") ?? "", /^text\/html/)
      const html = yield* Effect.promise(() => res.text())
      assert.include(html, "<h1>cmdop relay</h1>")
      assert.match(html, /version \d+\.\d+\.\d+/)
      assert.include(html, `<code>cmdop connect --list --server ${w.server}</code>`)
      assert.include(html, '<a id="signin" href="/signin?next=%2Fcabinet">Sign in</a>')
      assert.include(html, "/s/&lt;token&gt;")
      const signin = yield* Effect.promise(() => fetch(`${w.shareBase}/signin?next=%2Fcabinet`))
      assert.strictEqual(signin.status, 200, "the page's sign-in link leads somewhere")
    })
  )
})
