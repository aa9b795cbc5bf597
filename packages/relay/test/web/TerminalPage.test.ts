/**
 * The share-link terminal page and its assets: the HTML escapes what it prints and points at the relay's own
 * assets; a real relay (`RelayServer.serveWith`, memory store) serves those assets with cache headers and routes
 * the terminal socket, share-token-length paths included.
 */
import { assert, describe, it } from "@effect/vitest"
import * as RelayServer from "@cmdop/relay/RelayServer"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as Assets from "@cmdop/relay/web/assets.generated"
import * as TerminalClient from "@cmdop/relay/web/TerminalClient"
import * as TerminalPage from "@cmdop/relay/web/TerminalPage"
import * as Effect from "effect/Effect"
import * as http from "node:http"
import { gunzipSync } from "node:zlib"

const relay = RelayServer.serveWith({ grpcPort: 0, httpPort: 0, host: "127.0.0.1" }, "memory").pipe(
  Effect.provide(RelayStore.layerMemory)
)

describe("TerminalPage", () => {
  it("escapes the machine name and the token, and names the expiry in UTC", () => {
    const html = TerminalPage.render({
      token: `a"b<c>&d'e`,
      machineHostname: `<script>alert("x")</script>`,
      expiresAt: Date.UTC(2031, 0, 2, 3, 4, 5)
    })
    assert.notInclude(html, "<script>alert")
    assert.include(html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")
    assert.include(html, `data-socket="./a%22b%3Cc%3E%26d&#39;e/ws"`)
    assert.include(html, `<time datetime="2031-01-02T03:04:05Z">2031-01-02 03:04:05 UTC</time>`)
    assert.include(html, `<div id="status"`)
    assert.include(html, `<main id="terminal"`)
    assert.include(html, `src="../assets/terminal.js?v=${Assets.version}"`)
    assert.include(html, `href="../assets/terminal.css?v=${Assets.version}"`)
    assert.include(TerminalPage.render({ token: "t", machineHostname: "h" }), "Link never expires")
  })

  it("the page response keeps the token out of referrers and caches", () => {
    const response = TerminalPage.response({ token: "t", machineHostname: "h" })
    assert.strictEqual(response.headers["referrer-policy"], "no-referrer")
    assert.strictEqual(response.headers["cache-control"], "no-store")
    assert.include(response.headers["content-security-policy"] ?? "", "connect-src 'self'")
  })

  it("the bundle holds xterm.js and its stylesheet", () => {
    assert.include(Assets.script, "xterm")
    assert.include(Assets.style, ".xterm")
    assert.include(Assets.style, "#status")
    assert.match(Assets.version, /^[0-9a-f]{16}$/)
  })

  it.scopedLive("the relay serves the assets itself, cacheable and compressed", () =>
    Effect.gen(function* () {
      const running = yield* relay
      const get = (path: string, headers: Record<string, string> = {}) =>
        Effect.promise(async () => {
          const response = await fetch(`${running.httpAddress}${path}`, { headers })
          return { response, body: Buffer.from(await response.arrayBuffer()) }
        })
      const js = yield* get(`/assets/terminal.js?v=${Assets.version}`)
      assert.strictEqual(js.response.status, 200)
      assert.strictEqual(js.response.headers.get("content-type"), "text/javascript; charset=utf-8")
      assert.strictEqual(js.response.headers.get("cache-control"), "public, max-age=31536000, immutable")
      assert.strictEqual(js.body.toString("utf8"), Assets.script)
      const stale = yield* get("/assets/terminal.js?v=old")
      assert.strictEqual(stale.response.headers.get("cache-control"), "no-cache")
      const css = yield* get("/assets/terminal.css")
      assert.strictEqual(css.response.headers.get("content-type"), "text/css; charset=utf-8")
      assert.strictEqual(css.body.toString("utf8"), Assets.style)
      const revalidated = yield* get("/assets/terminal.css", { "if-none-match": `"${Assets.version}"` })
      assert.strictEqual(revalidated.response.status, 304)
      // fetch decompresses by itself, so the raw body comes through node:http: it must be gzip of the script.
      const raw = yield* Effect.async<{ encoding: string | undefined; body: Buffer }, Error>((resume) => {
        http
          .get(`${running.httpAddress}/assets/terminal.js`, { headers: { "accept-encoding": "gzip" } }, (res) => {
            const chunks: Array<Buffer> = []
            res.on("data", (c: Buffer) => chunks.push(c))
            res.on("end", () =>
              resume(Effect.succeed({ encoding: res.headers["content-encoding"], body: Buffer.concat(chunks) }))
            )
          })
          .on("error", (e) => resume(Effect.fail(e)))
      })
      assert.strictEqual(raw.encoding, "gzip")
      assert.isBelow(raw.body.byteLength, Assets.script.length / 2)
      assert.strictEqual(gunzipSync(raw.body).toString("utf8"), Assets.script)
    })
  )

  it.scopedLive("the relay routes the terminal socket, for tokens as long as share tokens", () =>
    Effect.gen(function* () {
      const running = yield* relay
      const token = `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.${"x".repeat(300)}.${"y".repeat(43)}`
      // The token reaches the terminal's gate (not a 404), which refuses the forged link before any upgrade.
      const refused = yield* TerminalClient.upgradeRefusal(`${running.httpAddress}/s/${token}/ws`)
      assert.strictEqual(refused.status, 401)
      assert.notInclude(refused.body, token)
    })
  )
})
