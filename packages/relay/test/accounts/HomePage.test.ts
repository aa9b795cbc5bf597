/**
 * `/` on a real relay's HTTP port: what this is (a cmdop relay and its version, the `@cmdop/relay` package's), with
 * the sign-in link when the relay has accounts and without it otherwise; server-rendered, no script, the strict
 * Content Security Policy of the other pages.
 */
import * as RelayServer from "@cmdop/relay/RelayServer"
import * as RelayStore from "@cmdop/relay/RelayStore"
import { RELAY_VERSION } from "@cmdop/relay/web/HomePage"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import { browser, setup } from "./relayFixture.js"

const packageVersion = (
  JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version

const checkPage = (r: { status: number; text: string; headers: Headers }) => {
  assert.strictEqual(r.status, 200)
  assert.include(r.headers.get("content-type") ?? "", "text/html")
  assert.include(r.headers.get("content-security-policy") ?? "", "default-src 'none'")
  assert.strictEqual(r.headers.get("x-frame-options"), "DENY")
  assert.include(r.text, "<title>cmdop relay · cmdop</title>")
  assert.include(r.text, `version ${packageVersion}`)
  assert.notInclude(r.text, "<script")
}

describe("the relay's home page", () => {
  it("names the package's version", () => {
    assert.strictEqual(RELAY_VERSION, packageVersion)
  })

  it.scoped("with accounts: what this is, and the sign-in link (which leads to the sign-in page)", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const page = browser(env.running.httpAddress)
      const home = yield* page.request("/")
      checkPage(home)
      assert.include(home.text, `<a id="signin" href="/signin?next=%2Fcabinet">Sign in</a>`)
      assert.include(home.text, "cmdop relay user add")
      const signIn = yield* page.request("/signin?next=%2Fcabinet")
      assert.strictEqual(signIn.status, 200)
      assert.include(signIn.text, 'name="csrf"')
    })
  )

  it.scoped("without accounts: what this is, no sign-in link", () =>
    Effect.gen(function* () {
      const running = yield* RelayServer.serveWith({ grpcPort: 0, httpPort: 0, host: "127.0.0.1" }, "memory").pipe(
        Effect.provide(RelayStore.layerMemory)
      )
      const home = yield* browser(running.httpAddress).request("/")
      checkPage(home)
      assert.notInclude(home.text, "/signin")
      assert.include(home.text, "no web sign-in")
    })
  )
})
