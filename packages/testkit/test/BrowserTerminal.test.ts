/**
 * The browser terminal in a real browser: Debian's Chromium (driven by playwright-core) opens `/s/<token>` on a
 * real relay (127.0.0.1, gRPC + HTTP) whose machine runs a real agent daemon with real PTYs. The guest types into
 * xterm.js and the machine answers; shrinking the window resizes the PTY; revoking the share link ends the
 * session with a message in the terminal and in the `#status` banner. A screenshot lands in
 * /tmp/browser-terminal.png. The link is a real share link minted over gRPC; the page, its assets and its
 * WebSocket all come from the relay.
 */
import { assert, describe, it } from "@effect/vitest"
import * as LoopbackRelay from "@cmdop/testkit/LoopbackRelay"
import { eventually } from "@cmdop/test-helpers/Eventually"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import { chromium, type Page } from "playwright-core"

const CHROMIUM = "/usr/bin/chromium"
const SCREENSHOT = "/tmp/browser-terminal.png"

const promise = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (e) => new Error(`${what}: ${e instanceof Error ? e.message : String(e)}`) })

/** The terminal's visible rows, as text. */
const screen = (page: Page) =>
  promise("read the terminal", () =>
    page.evaluate(() =>
      Array.from(document.querySelectorAll(".xterm-rows > div"), (row) =>
        (row.textContent ?? "").replace(/\u00a0/g, " ").trimEnd()
      )
    )
  )

/** Waits until some visible row matches `pattern` entirely; returns that row (the last such). */
const rowMatching = (page: Page, pattern: RegExp) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 10_000
    for (;;) {
      const rows = yield* screen(page)
      const found = rows.filter((r) => pattern.test(r.trim())).pop()
      if (found !== undefined) return found.trim()
      if (Date.now() > deadline)
        return yield* Effect.fail(new Error(`no row matching ${pattern} in 10 s; screen:\n${rows.join("\n")}`))
      yield* Effect.sleep("50 millis")
    }
  })

describe("browser terminal", () => {
  it.scopedLive("a guest types into xterm.js, the machine answers, resizes follow, revocation ends it visibly", () =>
    Effect.gen(function* () {
      if (!fs.existsSync(CHROMIUM))
        assert.fail(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run this test`)
      const relay = yield* LoopbackRelay.make()
      const key = yield* relay.createWorkspace("team")
      yield* relay.startAgent(key, "pty-box")
      yield* relay.waitOnline(key, ["pty-box"])
      const owner = yield* relay.client(key)
      const minted = yield* owner.createShare("pty-box", 3600)
      assert.match(minted.url, /\/s\/eyJ/)

      const browser = yield* Effect.acquireRelease(
        promise("launch chromium", () =>
          chromium.launch({
            executablePath: CHROMIUM,
            args: [
              "--no-sandbox",
              "--headless",
              "--disable-gpu",
              "--disable-quic",
              "--no-first-run",
              "--disable-background-networking",
              "--disable-component-update",
              "--disable-sync"
            ]
          })
        ),
        (b) => Effect.promise(() => b.close())
      )
      const page = yield* promise("open a page", () => browser.newPage({ viewport: { width: 1000, height: 640 } }))
      const problems: Array<string> = []
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console error: ${m.text()}`)
      })
      yield* promise("load the page", () => page.goto(minted.url))
      yield* promise("attach", () => page.waitForSelector("body[data-state=connected]", { timeout: 10_000 })).pipe(
        Effect.mapError((e) => new Error(`${e.message}\n${problems.join("\n")}`))
      )
      assert.strictEqual(yield* promise("header", () => page.textContent("header .machine")), "pty-box")

      // The guest types (once the shell prompts); only the shell prints the word on a row of its own.
      yield* rowMatching(page, /[#$]$/)
      yield* promise("focus", () => page.click("#terminal"))
      yield* promise("type", () => page.keyboard.type("echo hello-from-guest"))
      yield* promise("enter", () => page.keyboard.press("Enter"))
      assert.strictEqual(yield* rowMatching(page, /^hello-from-guest$/), "hello-from-guest")

      // The PTY has the terminal's size; shrinking the window shrinks both.
      const sizeOf = (row: string) => row.slice("size=".length).split(" ").map(Number) as [number, number]
      yield* promise("type", () => page.keyboard.type("echo size=$(stty size)"))
      yield* promise("enter", () => page.keyboard.press("Enter"))
      const [rows1, cols1] = sizeOf(yield* rowMatching(page, /^size=\d+ \d+$/))
      assert.strictEqual(rows1, (yield* screen(page)).length)
      yield* promise("resize", () => page.setViewportSize({ width: 700, height: 420 }))
      let rows2 = rows1
      for (let i = 0; i < 100 && rows2 === rows1; i++) {
        yield* Effect.sleep("50 millis")
        rows2 = (yield* screen(page)).length
      }
      assert.isBelow(rows2, rows1)
      yield* promise("type", () => page.keyboard.type("echo size=$(stty size)"))
      yield* promise("enter", () => page.keyboard.press("Enter"))
      const [rowsPty, cols2] = sizeOf(yield* rowMatching(page, new RegExp(`^size=${rows2} \\d+$`)))
      assert.strictEqual(rowsPty, rows2)
      assert.isBelow(cols2, cols1)

      // The owner revokes the link: the guest's session ends at once, and the page says so. The browser's shell
      // itself is ended on the machine, not left behind for the idle reaper.
      const revoked = yield* owner.revokeShare(minted.link.id)
      assert.strictEqual(revoked.sessionsEnded, 1)
      yield* promise("ended", () => page.waitForSelector("body[data-state=ended]", { timeout: 5_000 }))
      assert.include(yield* promise("banner", () => page.textContent("#status-text")), "revoked")
      assert.isTrue(yield* promise("banner visible", () => page.isVisible("#status")))
      yield* rowMatching(page, /revoked/)
      yield* promise("screenshot", () => page.screenshot({ path: SCREENSHOT }))
      assert.deepStrictEqual(problems, [])
      yield* eventually(
        "the guest's shell gone from the machine",
        Effect.map(owner.listSessions("pty-box"), (r) => (r.sessions.length === 0 ? true : undefined)),
        { timeout: "5 seconds", interval: "50 millis" }
      )
    })
  )
})
