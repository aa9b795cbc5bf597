/**
 * `cmdop relay user add|remove|disable|enable` on the relay host, in both worlds (`World.ts`): a person is added
 * with a one-time link, their role changed by adding them again, removed, disabled and enabled, each with one clear
 * error for a bad input. In the CLI's in-memory world the people live in memory with its relay: nothing is
 * written under the data dir (no SQLite file).
 */
import { eventually } from "@cmdop/test-helpers/Eventually"
import { freePort } from "@cmdop/test-helpers/FreePort"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Layers from "../src/Layers.js"
import { runMain } from "./support.js"
import { worlds } from "./World.js"

for (const [worldName, makeWorld] of worlds)
  describe(`relay user …, ${worldName}`, () => {
    it.scopedLive(
      "add (a link, once), change a role, remove, disable and enable; bad inputs are one clear error",
      () =>
        Effect.gen(function* () {
          const w = yield* makeWorld
          const user = (args: ReadonlyArray<string>) => w.admin(["user", ...args])
          const added = yield* user(["add", "alice@example.com", "--workspace", "acme", "--role", "owner", "--json"])
          assert.strictEqual(added.code, 0, added.stderr)
          const first = JSON.parse(added.stdout) as { role: string; sign_in_link: string | null; workspace: string }
          assert.deepStrictEqual([first.workspace, first.role], ["acme", "owner"])
          assert.match(first.sign_in_link ?? "", /\/signin\/\S+$/)
          const bob = yield* user(["add", "bob@example.com", "--workspace", "acme"])
          assert.strictEqual(bob.code, 0, bob.stderr)
          assert.include(bob.stdout, "bob@example.com is member of acme")
          const demoted = yield* user(["add", "bob@example.com", "--workspace", "acme", "--role", "viewer", "--json"])
          assert.strictEqual(demoted.code, 0, demoted.stderr)
          assert.strictEqual(JSON.parse(demoted.stdout).role, "viewer")

          const removed = yield* user(["remove", "bob@example.com", "--workspace", "acme"])
          assert.strictEqual(removed.code, 0, removed.stderr)
          assert.include(removed.stdout, "no longer a member of acme")
          const again = yield* user(["remove", "bob@example.com", "--workspace", "acme"])
          assert.notStrictEqual(again.code, 0)
          assert.include(again.stderr, "bob@example.com is not a member of acme")
          const nowhere = yield* user(["remove", "bob@example.com", "--workspace", "globex"])
          assert.include(nowhere.stderr, 'workspace "globex" does not exist')

          const disabled = yield* user(["disable", "alice@example.com", "--json"])
          assert.strictEqual(disabled.code, 0, disabled.stderr)
          assert.deepStrictEqual(JSON.parse(disabled.stdout), { user: "alice@example.com", disabled: true })
          const enabled = yield* user(["enable", "alice@example.com"])
          assert.include(enabled.stdout, "alice@example.com may sign in again")
          const nobody = yield* user(["disable", "nobody@example.com"])
          assert.notStrictEqual(nobody.code, 0)
          assert.include(nobody.stderr, 'there is no person "nobody@example.com"')
          const bad = yield* user(["add", "not-an-email", "--workspace", "acme"])
          assert.notStrictEqual(bad.code, 0)
          assert.include(bad.stderr, "email")
        }),
      120_000
    )
  })

describe("relay user add in the CLI's in-memory world", () => {
  it.scopedLive("keeps people in memory with the in-process relay: no SQLite file under the data dir", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-memory-user-")
      const services = Layer.succeedContext(yield* Layer.build(Layers.memory({ home })))
      const run = (args: ReadonlyArray<string>) => runMain(["relay", "user", ...args], { env: {}, services })
      const added = yield* run(["add", "alice@example.com", "--workspace", "acme", "--role", "owner"])
      assert.strictEqual(added.code, 0, added.stderr)
      assert.include(added.stdout, "created workspace acme")
      // Without --public-url the link points at the default web address, and says so.
      assert.include(added.stdout, "sign-in link: http://127.0.0.1:8080/signin/")
      assert.include(added.stderr, "the link assumes the relay's web address is http://127.0.0.1:8080")
      const carol = yield* run([
        "add",
        "carol@example.com",
        "--workspace",
        "acme",
        "--public-url",
        "https://r.example/"
      ])
      assert.include(carol.stdout, "sign-in link: https://r.example/signin/")
      assert.notInclude(carol.stderr, "assumes")
      // The same in-memory relay and people answer the next command: acme is there, and alice the last owner.
      const bob = yield* run(["add", "bob@example.com", "--workspace", "acme"])
      assert.strictEqual(bob.code, 0, bob.stderr)
      assert.notInclude(bob.stdout, "created workspace")
      const lastOwner = yield* run(["add", "alice@example.com", "--workspace", "acme", "--role", "member"])
      assert.include(lastOwner.stderr, "last owner")
      const dataDir = path.join(home, ".cmdop", "relay")
      assert.isFalse(fs.existsSync(dataDir), `${dataDir} was created`)
      assert.deepStrictEqual(
        fs.readdirSync(home).filter((f) => f.endsWith(".db")),
        []
      )
    })
  )
})

/** Every file under `dir`, recursively (relative paths). */
const filesUnder = (dir: string): ReadonlyArray<string> =>
  fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => fs.statSync(path.join(dir, f)).isFile())

describe("relay serve in the CLI's in-memory world", () => {
  it.scopedLive(
    "serves the in-memory people of relay user add, and writes nothing to disk (no data dir, no lock, no .db)",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make("cmdop-memory-serve-")
        const services = Layer.succeedContext(yield* Layer.build(Layers.memory({ home })))
        const before = filesUnder(home)
        const added = yield* runMain(
          ["relay", "user", "add", "alice@example.com", "--workspace", "acme", "--role", "owner", "--json"],
          { env: {}, services }
        )
        assert.strictEqual(added.code, 0, added.stderr)
        const link = new URL(JSON.parse(added.stdout).sign_in_link as string).pathname
        const [grpcPort, httpPort] = [yield* freePort, yield* freePort]
        yield* Effect.forkScoped(
          runMain(["relay", "serve", "--grpc-port", String(grpcPort), "--http-port", String(httpPort)], {
            env: {},
            services
          })
        )
        const base = `http://127.0.0.1:${httpPort}`
        const form = yield* eventually(
          "relay serve answering on its HTTP port",
          Effect.promise(() => fetch(`${base}${link}`).catch(() => undefined))
        )
        assert.strictEqual(form.status, 200)
        const cookie = (form.headers.get("set-cookie") ?? "").split(";")[0]!
        const csrf = /name="csrf" value="([^"]+)"/.exec(yield* Effect.promise(() => form.text()))![1]!
        // The link `relay user add` printed works on the served relay: the same people, in memory.
        const redeemed = yield* Effect.promise(() =>
          fetch(`${base}${link}`, {
            method: "POST",
            redirect: "manual",
            headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
            body: new URLSearchParams({ csrf, password: "correct horse battery staple" }).toString()
          })
        )
        assert.strictEqual(redeemed.status, 303, yield* Effect.promise(() => redeemed.text()))
        assert.strictEqual(redeemed.headers.get("location"), "/cabinet")
        const session = (redeemed.headers.get("set-cookie") ?? "").split(";")[0]!
        const cabinet = yield* Effect.promise(() => fetch(`${base}/cabinet`, { headers: { cookie: session } }))
        assert.strictEqual(cabinet.status, 200)
        const text = yield* Effect.promise(() => cabinet.text())
        assert.include(text, "alice@example.com")
        assert.include(text, "acme")
        // Nothing on disk: no data dir (so no relay.lock), no SQLite file anywhere under HOME.
        assert.isFalse(fs.existsSync(path.join(home, ".cmdop", "relay")), "the data dir was created")
        assert.deepStrictEqual(filesUnder(home), before)
      }),
    60_000
  )
})
