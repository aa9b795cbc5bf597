import { ShareService } from "@cmdop/domain/ShareService"
import * as RelayServer from "@cmdop/relay/RelayServer"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as SharePage from "@cmdop/relay/share/SharePage"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import * as http from "node:http"
import { fixtureOn, freshFixture } from "./fixtures.js"

const start = Date.parse("2026-04-25T12:34:56Z")
const server = "127.0.0.1:50051"
const hour = 3_600_000

/** A fixture at a realistic time with one workspace, one machine and a 4 h link minted by `creator`. */
const setup = (creator = "ck_live_abcd") =>
  Effect.gen(function* () {
    const fx = yield* freshFixture("memory")
    yield* TestClock.setTime(start)
    const ws = yield* fx.workspace()
    const machine = ws.machines[0]!
    const share = yield* fx.shares.mint({
      creator: { workspaceId: ws.workspaceId, principal: creator, kind: "key" },
      machine,
      ttlSeconds: 4 * 3600,
      publicUrl: "http://relay.test"
    })
    const render = (token: string) => Effect.provideService(SharePage.render(token, server), ShareService, fx.shares)
    return { fx, ws, machine, share, render }
  })

/** No external assets, no script, no form: the page is inert. */
const assertInert = (html: string) => {
  assert.notMatch(html, /<script|src=|href=|<form|<iframe|url\(/i)
  assert.match(html, /^<!doctype html>/)
}

describe("SharePage.render", () => {
  it.scoped("a valid link: 200, the machine, its expiry and the CLI command", () =>
    Effect.gen(function* () {
      const { machine, render, share, ws } = yield* setup()
      const page = yield* render(share.token)
      assert.strictEqual(page.status, 200)
      assert.include(page.html, machine.hostname)
      assert.include(page.html, ws.workspaceName)
      assert.include(page.html, "2026-04-25T16:34:56Z")
      assert.include(
        page.html,
        `cmdop connect --api-key ${share.token} --server ${server} exec ${machine.hostname} -- uptime`
      )
      assert.strictEqual(page.headers["cache-control"], "no-store")
      assert.strictEqual(page.headers["referrer-policy"], "no-referrer")
      assert.include(page.headers["content-security-policy"]!, "default-src 'none'")
      assertInert(page.html)
    })
  )

  it.scoped("everything printed is escaped", () =>
    Effect.gen(function* () {
      const { render, share } = yield* setup(`<img src=x onerror=alert(1)>&"'`)
      const page = yield* render(share.token)
      assert.strictEqual(page.status, 200)
      assert.include(page.html, "&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#39;")
      assert.notInclude(page.html, "<img")
    })
  )

  it.scoped("expired, revoked, rotated, retired: 410; machine gone: 404; garbage: 401; never the token", () =>
    Effect.gen(function* () {
      const { fx, machine, render, share, ws } = yield* setup()
      const mint = (ttlSeconds = 3600) =>
        fx.shares.mint({
          creator: { workspaceId: ws.workspaceId, principal: "ck_live_abcd", kind: "key" },
          machine,
          ttlSeconds,
          publicUrl: "http://relay.test"
        })
      const expect = (token: string, status: number, text: string) =>
        Effect.map(render(token), (page) => {
          assert.strictEqual(page.status, status, page.html)
          assert.include(page.html, text)
          assert.notInclude(page.html, token)
          assert.notInclude(page.html, token.split(".")[2] ?? token)
          assertInert(page.html)
          assert.strictEqual(page.headers["cache-control"], "no-store")
          // The error page may not be framed either (clickjacking).
          assert.include(page.headers["content-security-policy"]!, "frame-ancestors 'none'")
          if (status === 401) assert.include(page.headers["www-authenticate"]!, "Bearer")
          return page
        })

      const revoked = yield* mint()
      yield* fx.shares.revoke(ws.workspaceId, revoked.link.id)
      yield* expect(revoked.token, 410, "was revoked at")

      const retiredKey = yield* fx.shares.rotateSigningKey
      const underOldKey = share.token
      yield* fx.shares.retireSigningKey(retiredKey.previous!)
      yield* expect(underOldKey, 410, "retired")

      const expiring = yield* mint(3600)
      yield* TestClock.adjust(2 * hour)
      yield* expect(expiring.token, 410, "share link expired at 2026-04-25T13:34:56Z")

      const rotated = yield* mint()
      yield* fx.rotateWorkspaceKey(ws.workspaceId)
      yield* expect(rotated.token, 410, "the workspace key was rotated; ask for a new link")

      const gone = yield* mint()
      yield* fx.removeMachine(machine.id)
      yield* expect(gone.token, 404, "no longer in its workspace")

      yield* expect("not-a-token", 401, "not a valid share link token")
      yield* expect("<script>alert(1)</script>", 401, "not a valid share link token")
      // A changed signature (its first character: every bit of it counts; the last ones may carry padding bits, and
      // once in ~1,000 runs "AA" at the end decoded to the same signature, which is the retired key's valid one).
      const [header, payload, signature] = share.token.split(".")
      const forged = `${header}.${payload}.${signature![0] === "A" ? "B" : "A"}${signature!.slice(1)}`
      yield* expect(forged, 401, "not issued by this relay")
    })
  )

  it("statusOf covers every reason", () => {
    assert.deepStrictEqual(
      (
        [
          "Malformed",
          "BadSignature",
          "NotFound",
          "Expired",
          "Revoked",
          "KeyRotated",
          "SigningKeyRetired",
          "MachineGone",
          "NotAllowed",
          "InvalidTtl",
          "Unavailable"
        ] as const
      ).map(SharePage.statusOf),
      [401, 401, 401, 410, 410, 410, 410, 404, 403, 400, 503]
    )
  })

  it.scoped("fuzz: thousands of random and token-like inputs render a 401 page that never echoes them", () =>
    Effect.gen(function* () {
      const { render, share } = yield* setup()
      const [h, p, s] = share.token.split(".")
      const input = FastCheck.oneof(
        FastCheck.string({ maxLength: 200 }),
        FastCheck.string({ unit: "binary", maxLength: 200 }),
        FastCheck.tuple(FastCheck.nat(share.token.length - 1), FastCheck.char()).map(
          ([i, c]) => share.token.slice(0, i) + c + share.token.slice(i + 1)
        ),
        FastCheck.constantFrom(`${h}.${p}`, `${h}.${p}.`, `${p}.${h}.${s}`, `${h}.${p}.${s}.${s}`)
      )
      for (const token of FastCheck.sample(input, { numRuns: 2000, seed: 7 })) {
        if (token === share.token) continue
        const page = yield* render(token)
        assert.strictEqual(page.status, 401, JSON.stringify(token))
        if (token.length > 3 && /[<>&"']/.test(token)) assert.notInclude(page.html, token)
      }
    })
  )
})

/** GET `path` (sent as is) on the relay's HTTP port: status, content type and body. */
const get = (port: number, path: string) =>
  Effect.async<{ status: number; contentType: string; body: string }, Error>((resume) => {
    const request = http.get({ host: "127.0.0.1", port, path, agent: false }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (c: Buffer) => chunks.push(c))
      response.on("end", () =>
        resume(
          Effect.succeed({
            status: response.statusCode ?? 0,
            contentType: String(response.headers["content-type"]),
            body: Buffer.concat(chunks).toString("utf8")
          })
        )
      )
    })
    request.on("error", (error) => resume(Effect.fail(error)))
    return Effect.sync(() => request.destroy())
  })

describe("GET /s/<token> over real HTTP", () => {
  it.scopedLive("serves the page for a valid link and a plain error otherwise; fuzzed paths never 500 or 200", () =>
    Effect.gen(function* () {
      const storeContext = yield* Layer.build(RelayStore.layerMemory)
      const store = Context.get(storeContext, RelayStore.RelayStore)
      const running = yield* RelayServer.serveWith({ grpcPort: 0, httpPort: 0 }, "memory").pipe(
        Effect.provide(storeContext)
      )
      const port = Number(new URL(running.httpAddress).port)
      // Another ShareService over the same store mints (keys and links are in the store, shared by both).
      const fx = yield* fixtureOn(store)
      const ws = yield* fx.workspace()
      const share = yield* fx.shares.mint({
        creator: { workspaceId: ws.workspaceId, principal: "ck_live_abcd", kind: "key" },
        machine: ws.machines[0]!,
        ttlSeconds: 3600,
        publicUrl: running.publicUrl
      })
      assert.isTrue(share.url.startsWith(`${running.httpAddress}/s/`))

      // A valid link gets a page for its machine (the relay may serve the browser terminal there).
      const ok = yield* get(port, new URL(share.url).pathname)
      assert.strictEqual(ok.status, 200)
      assert.match(ok.contentType, /^text\/html/)
      assert.include(ok.body, ws.machines[0]!.hostname)

      const bad = yield* get(port, "/s/not-a-token")
      assert.strictEqual(bad.status, 401)
      assert.strictEqual(bad.contentType, "text/html; charset=utf-8")
      assert.include(bad.body, "not a valid share link token")

      yield* fx.shares.revoke(ws.workspaceId, share.link.id)
      assert.strictEqual((yield* get(port, new URL(share.url).pathname)).status, 410)

      const printable = FastCheck.string({ unit: FastCheck.integer({ min: 0x21, max: 0x7e }).map(String.fromCharCode) })
      const segment = FastCheck.oneof(
        FastCheck.string({ maxLength: 300 }).map(encodeURIComponent),
        FastCheck.string({ unit: "binary", maxLength: 100 }).map(encodeURIComponent),
        printable.filter((s) => !s.includes("#") && !s.includes("?")),
        FastCheck.constantFrom("%", "%zz", "%00", "%2F", "%ff%fe", "..", "../../etc/passwd", "a".repeat(5000))
      )
      const started = Date.now()
      for (const s of FastCheck.sample(segment, { numRuns: 300, seed: 11 })) {
        const response = yield* get(port, `/s/${s}`)
        assert.notStrictEqual(response.status, 200, `/s/${s}`)
        assert.isBelow(response.status, 500, `/s/${s}: ${response.body}`)
        assert.notInclude(response.body, "    at ", "no stack trace")
      }
      assert.isBelow(Date.now() - started, 10_000)
    })
  )
})
