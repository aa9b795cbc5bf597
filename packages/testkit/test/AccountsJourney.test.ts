/**
 * People on a relay, end to end, with real processes and a real browser (Debian's Chromium through
 * playwright-core): from an empty relay, `relay user add` prints a sign-in link; the person sets a password there
 * in the browser; `cmdop login` in another HOME is approved on `/device`; `connect --list` and `exec` work with no
 * API key anywhere; `workspace sync` fills the workspace file (a stored key kept, nothing deleted); `agent
 * register` runs under the login; switching the active workspace in the cabinet moves the machine (same id) into
 * the other workspace at once (the relay closes the agent's stream within a quarter second, the agent registers
 * again); `logout` ends the login's access at once.
 */
import * as Eventually from "@cmdop/test-helpers/Eventually"
import { freePort } from "@cmdop/test-helpers/FreePort"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Processes from "@cmdop/testkit/Processes"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { chromium } from "playwright-core"

const CHROMIUM = "/usr/bin/chromium"

const promise = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (e) => new Error(`${what}: ${e instanceof Error ? e.message : String(e)}`) })

/** `cmdop <args>` in `home`, which must succeed; its stdout. */
const ok = (home: string, args: ReadonlyArray<string>) =>
  Effect.flatMap(Processes.run(home, args), (r) =>
    r.code === 0 ? Effect.succeed(r.stdout) : Effect.fail(new Error(`cmdop ${args.join(" ")} → ${r.code}: ${r.stderr}`))
  )

interface Listed {
  readonly machines: ReadonlyArray<{ readonly id: string; readonly name: string; readonly online: boolean }>
}

describe("accounts journey", () => {
  it.scopedLive(
    "user add → password in the browser → login → list/exec without keys → sync → agent → migration → logout",
    () =>
      Effect.gen(function* () {
        if (!fs.existsSync(CHROMIUM)) assert.fail(`${CHROMIUM} is missing: apt-get install chromium`)
        const relayHome = yield* TempHome.make("cmdop-relayhost-")
        const alice = yield* TempHome.make("cmdop-alice-")
        const grpcPort = yield* freePort
        const httpPort = yield* freePort
        const web = `http://127.0.0.1:${httpPort}`
        const server = `127.0.0.1:${grpcPort}`

        // The relay host adds the first owner (the workspace is created) and a second workspace she owns.
        const added = yield* ok(relayHome, [
          "relay",
          "user",
          "add",
          "alice@example.com",
          "--workspace",
          "acme",
          "--role",
          "owner",
          "--public-url",
          web
        ])
        const link = /sign-in link: (\S+)/.exec(added)?.[1]
        assert.isDefined(link, added)
        yield* ok(relayHome, ["relay", "user", "add", "alice@example.com", "--workspace", "beta", "--role", "owner"])
        yield* Processes.daemon(
          relayHome,
          ["relay", "serve", "--grpc-port", String(grpcPort), "--http-port", String(httpPort)],
          /relay serving/
        )

        const browser = yield* Effect.acquireRelease(
          promise("launch chromium", () =>
            chromium.launch({
              executablePath: CHROMIUM,
              args: ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
            })
          ),
          (b) => Effect.promise(() => b.close())
        )
        const page = yield* promise("open a page", () => browser.newPage())
        // She sets her password through the link and lands in the cabinet.
        yield* promise("open the link", () => page.goto(link!))
        yield* promise("type a password", () => page.fill("input[name=password]", "correct horse battery staple"))
        yield* promise("submit", () => Promise.all([page.waitForURL(`${web}/cabinet`), page.click("button")]))
        assert.include(yield* promise("cabinet", () => page.textContent("body")), "alice@example.com")

        // A file from before: a workspace with a key that sync must keep.
        fs.mkdirSync(path.join(alice, ".cmdop"), { mode: 0o700 })
        fs.writeFileSync(
          path.join(alice, ".cmdop", "ssh_workspaces.json"),
          JSON.stringify({ workspaces: [{ name: "legacy", api_key: "ck_test_keepthiskeykeepthiskey" }] }),
          { mode: 0o600 }
        )

        // cmdop login in her HOME, approved in the browser.
        const login = yield* Processes.daemon(
          alice,
          ["login", "--server", server, "--web-url", web, "--no-browser"],
          /code [A-Z]{4}-[A-Z]{4}/
        )
        const code = /code ([A-Z]{4}-[A-Z]{4})/.exec(login.output())![1]!
        yield* promise("open /device", () => page.goto(`${web}/device?user_code=${code}`))
        yield* promise("approve", () =>
          Promise.all([page.waitForURL(`${web}/device`), page.click("button[value=approve]")])
        )
        assert.include(yield* promise("approved", () => page.textContent("h1")), "approved")
        yield* Eventually.eventuallySync("login ends", () => (login.child.exitCode === null ? undefined : true), {
          timeout: "30 seconds",
          interval: "100 millis"
        })
        assert.strictEqual(login.child.exitCode, 0, login.output())
        assert.include(login.output(), "as alice@example.com (active workspace acme)")
        const token = JSON.parse(fs.readFileSync(path.join(alice, ".cmdop", "token.json"), "utf8"))
        assert.strictEqual(fs.statSync(path.join(alice, ".cmdop", "token.json")).mode & 0o777, 0o600)

        // No API key anywhere: the login is the credential.
        const who = yield* ok(alice, ["connect", "whoami", "--json"])
        assert.strictEqual(JSON.parse(who).source, "oauth")
        assert.deepStrictEqual((JSON.parse(yield* ok(alice, ["connect", "--list", "--json"])) as Listed).machines, [])

        // sync fills the file: both relay workspaces added, the stored key kept, nothing deleted.
        const synced = JSON.parse(yield* ok(alice, ["connect", "workspace", "sync", "--json"]))
        assert.deepStrictEqual(synced, { added: ["acme", "beta"], updated: [], unchanged: ["legacy"] })
        const file = JSON.parse(fs.readFileSync(path.join(alice, ".cmdop", "ssh_workspaces.json"), "utf8"))
        assert.strictEqual(file.workspaces[0].api_key, "ck_test_keepthiskeykeepthiskey")
        assert.deepStrictEqual(
          file.workspaces.map((w: { name: string; remote_name?: string }) => [w.name, w.remote_name ?? null]),
          [
            ["legacy", null],
            ["acme", "acme"],
            ["beta", "beta"]
          ]
        )

        // Her machine registers under the login, lands in her active workspace and answers exec.
        yield* ok(alice, ["agent", "register", "--name", "box"])
        yield* ok(alice, ["agent", "start"])
        yield* Effect.addFinalizer(() => Effect.ignore(Processes.run(alice, ["agent", "stop"])))
        const inAcme = yield* Eventually.eventually(
          "box online in acme",
          Effect.map(ok(alice, ["connect", "--list", "--json"]), (out) =>
            (JSON.parse(out) as Listed).machines.find((m) => m.name === "box" && m.online)
          ),
          { timeout: "20 seconds", interval: "200 millis" }
        )
        assert.strictEqual(
          (yield* ok(alice, ["connect", "exec", "box", "--", "echo", "hi-from-box"])).trim(),
          "hi-from-box"
        )

        // She makes beta active in the cabinet: the relay closes the agent's stream at its next credential sweep
        // (250 ms; `NextCall.test.ts` in the relay pins that), the agent registers again, and the machine moves there,
        // same id and name.
        yield* promise("cabinet", () => page.goto(`${web}/cabinet`))
        yield* promise("switch", () =>
          Promise.all([page.waitForURL(`${web}/cabinet`), page.click('tr:has-text("beta") button')])
        )
        assert.include(
          yield* promise("beta active", () => page.textContent('#workspaces tr:has-text("beta")')),
          "active"
        )
        // Listed in beta by name: an unqualified list right after the switch could still find it online in acme,
        // before the agent has registered again.
        const moved = yield* Eventually.eventually(
          "box online in beta",
          Effect.map(ok(alice, ["connect", "--list", "--json", "--workspace", "beta"]), (out) =>
            (JSON.parse(out) as Listed).machines.find((m) => m.name === "box" && m.online)
          ),
          { timeout: "75 seconds", interval: "500 millis" }
        )
        assert.strictEqual(moved.id, inAcme.id)
        assert.strictEqual(JSON.parse(yield* ok(alice, ["connect", "whoami", "--json"])).relay.workspace, "beta")
        const acmeNow = yield* ok(alice, ["connect", "--list", "--json", "--workspace", "acme"])
        assert.isUndefined((JSON.parse(acmeNow) as Listed).machines.find((m) => m.id === inAcme.id))

        // logout revokes at the relay: the old access token is refused at once, and the file is gone.
        yield* ok(alice, ["logout"])
        assert.isFalse(fs.existsSync(path.join(alice, ".cmdop", "token.json")))
        const replay = yield* Processes.run(alice, [
          "connect",
          "--list",
          "--api-key",
          token.access_token,
          "--server",
          server
        ])
        assert.notStrictEqual(replay.code, 0)
        assert.include(replay.stderr, "cmdop login")
      }),
    180_000
  )
  it.scopedLive(
    "a login denied in the browser stops with a clear message and leaves no token.json",
    () =>
      Effect.gen(function* () {
        if (!fs.existsSync(CHROMIUM)) assert.fail(`${CHROMIUM} is missing: apt-get install chromium`)
        const relayHome = yield* TempHome.make("cmdop-relayhost-")
        const bob = yield* TempHome.make("cmdop-bob-")
        const grpcPort = yield* freePort
        const httpPort = yield* freePort
        const web = `http://127.0.0.1:${httpPort}`
        const added = yield* ok(relayHome, [
          "relay",
          "user",
          "add",
          "bob@example.com",
          "--workspace",
          "acme",
          "--role",
          "member",
          "--public-url",
          web
        ])
        const link = /sign-in link: (\S+)/.exec(added)![1]!
        yield* Processes.daemon(
          relayHome,
          ["relay", "serve", "--grpc-port", String(grpcPort), "--http-port", String(httpPort)],
          /relay serving/
        )
        const browser = yield* Effect.acquireRelease(
          promise("launch chromium", () =>
            chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--headless", "--disable-gpu"] })
          ),
          (b) => Effect.promise(() => b.close())
        )
        const page = yield* promise("open a page", () => browser.newPage())
        yield* promise("open the link", () => page.goto(link))
        yield* promise("type a password", () => page.fill("input[name=password]", "correct horse battery staple"))
        yield* promise("submit", () => Promise.all([page.waitForURL(`${web}/cabinet`), page.click("button")]))
        const login = yield* Processes.daemon(
          bob,
          ["login", "--server", `127.0.0.1:${grpcPort}`, "--web-url", web, "--no-browser"],
          /code [A-Z]{4}-[A-Z]{4}/
        )
        const code = /code ([A-Z]{4}-[A-Z]{4})/.exec(login.output())![1]!
        yield* promise("open /device", () => page.goto(`${web}/device?user_code=${code}`))
        yield* promise("deny", () => Promise.all([page.waitForURL(`${web}/device`), page.click("button[value=deny]")]))
        yield* Eventually.eventuallySync("login ends", () => (login.child.exitCode === null ? undefined : true), {
          timeout: "30 seconds",
          interval: "100 millis"
        })
        assert.strictEqual(login.child.exitCode, 255)
        assert.include(login.output(), "the login was denied in the browser")
        assert.isFalse(fs.existsSync(path.join(bob, ".cmdop", "token.json")))
      }),
    120_000
  )

  it.scopedLive(
    "a code nobody approves expires: cmdop login stops with expired_token's clear message, no token.json",
    () =>
      Effect.gen(function* () {
        const relayHome = yield* TempHome.make("cmdop-relayhost-")
        const carol = yield* TempHome.make("cmdop-carol-")
        const grpcPort = yield* freePort
        const httpPort = yield* freePort
        const web = `http://127.0.0.1:${httpPort}`
        // A relay whose login codes live 2 s, polled every second (its configuration, from the environment).
        yield* Processes.daemon(
          relayHome,
          ["relay", "serve", "--grpc-port", String(grpcPort), "--http-port", String(httpPort)],
          /relay serving/,
          { env: { CMDOP_RELAY_DEVICE_CODE_LIFETIME: "2 seconds", CMDOP_RELAY_DEVICE_POLL_INTERVAL: "1 second" } }
        )
        const started = yield* promise("start a device login", async () => {
          const r = await fetch(`${web}/oauth/device_authorization`, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: "client_id=cmdop-cli"
          })
          return (await r.json()) as { expires_in: number; interval: number }
        })
        assert.deepStrictEqual([started.expires_in, started.interval], [2, 1])
        const login = yield* Processes.run(carol, [
          "login",
          "--server",
          `127.0.0.1:${grpcPort}`,
          "--web-url",
          web,
          "--no-browser"
        ])
        assert.strictEqual(login.code, 255, login.stderr)
        assert.match(login.stderr, /enter the code [A-Z]{4}-[A-Z]{4}/)
        assert.include(login.stderr, "the code expired before it was approved; run cmdop login again for a new one")
        assert.isFalse(fs.existsSync(path.join(carol, ".cmdop", "token.json")))
      }),
    120_000
  )
})
