/**
 * Saved state does what the README says, as the user types it: `key set K --workspace W --server S` saves both,
 * `workspace set` / `add --force` change a workspace, `key set badkey` is refused and a good key is checked with the
 * relay, a corrupt store does not block a call that names its key and relay, and decode errors are one line.
 */
import { assert, describe, it } from "@effect/vitest"
import { eventually } from "@cmdop/test-helpers/Eventually"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { cli } from "./support.js"
import * as Processes from "@cmdop/testkit/Processes"
import { live, memory } from "./World.js"

const KEY_A = "ck_live_AAAAaaaa1111bbbb2222cccc3333dddd"
const KEY_B = "ck_test_BBBBbbbb4444cccc5555dddd6666eeee"
const OFFLINE = "127.0.0.1:1"
const storeFile = (home: string) => path.join(home, ".cmdop", "ssh_workspaces.json")
const readStore = (home: string) => JSON.parse(fs.readFileSync(storeFile(home), "utf8"))

describe("saved state", () => {
  // First in the file: the memory world checks that nothing opened a socket while it ran, and the other tests
  // here dial an offline address.
  it.scopedLive("key set: whether the relay accepts the key, said right away", () =>
    Effect.gen(function* () {
      const w = yield* memory
      const key = yield* w.create("acme")
      const good = yield* w.cli(key, ["key", "set", key, "--workspace", "acme"])
      assert.strictEqual(good.code, 0, good.stderr)
      assert.include(good.stderr, "the relay at in-process accepts it (workspace acme)")
      const wrong = yield* w.cli(key, ["key", "set", KEY_A, "--workspace", "other"])
      assert.strictEqual(wrong.code, 0)
      assert.include(wrong.stderr, "warning: the relay does not accept this key")
      const json = JSON.parse((yield* w.cli(key, ["key", "set", key, "--workspace", "acme", "--json"])).stdout)
      assert.strictEqual(json.relay_accepts, true)
    })
  )

  it.scopedLive("key set --workspace --server saves both; workspace set and add --force change a workspace", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      // $ cmdop connect key set K --workspace acme --server S     (the README's line for a second machine)
      const set = yield* cli(home, ["connect", "key", "set", KEY_A, "--workspace", "acme", "--server", OFFLINE])
      assert.strictEqual(set.code, 0, set.stderr)
      assert.strictEqual(set.stdout, `stored key ck_live_…dddd for workspace acme (server ${OFFLINE})\n`)
      // Offline: said, not failed.
      assert.include(set.stderr, "could not reach the relay to check the key (offline?); it is stored")
      assert.deepStrictEqual(readStore(home), {
        active: "acme",
        workspaces: [{ name: "acme", api_key: KEY_A, server: OFFLINE }]
      })

      // $ cmdop connect workspace set acme --server relay.example:50051
      const changed = yield* cli(home, ["connect", "workspace", "set", "acme", "--server", "relay.example:50051"])
      assert.strictEqual(changed.stdout, "changed workspace acme: server relay.example:50051\n")
      assert.strictEqual(readStore(home).workspaces[0].server, "relay.example:50051")
      assert.strictEqual(readStore(home).workspaces[0].api_key, KEY_A)
      const nothing = yield* cli(home, ["connect", "workspace", "set", "acme"])
      assert.strictEqual(nothing.code, 2)
      assert.include(
        nothing.stderr,
        "nothing to change: cmdop connect workspace set acme --api-key K and/or --server S"
      )
      const unknown = yield* cli(home, ["connect", "workspace", "set", "nope", "--server", "x:1"])
      assert.strictEqual(unknown.code, 255)
      assert.include(unknown.stderr, "nope")

      // $ cmdop connect workspace add acme --api-key K2 --force
      const exists = yield* cli(home, ["connect", "workspace", "add", "acme", "--api-key", KEY_B])
      assert.strictEqual(exists.code, 255)
      const forced = yield* cli(home, ["connect", "workspace", "add", "acme", "--api-key", KEY_B, "--force"])
      assert.strictEqual(forced.code, 0, forced.stderr)
      assert.strictEqual(forced.stdout, "changed workspace acme (active) with key ck_test_…eeee\n")
      assert.deepStrictEqual(readStore(home).workspaces, [
        { name: "acme", api_key: KEY_B, server: "relay.example:50051" }
      ])
    })
  )

  it.scopedLive("key set badkey is refused and stores nothing", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const bad = yield* cli(home, ["connect", "key", "set", "badkey", "--workspace", "acme"])
      assert.strictEqual(bad.code, 2, "a usage error")
      assert.include(
        bad.stderr,
        "a key looks like ck_live_ (or ck_test_) followed by at least 32 letters and digits, or is a share token; nothing was stored"
      )
      assert.notInclude(bad.stderr, "badkey")
      assert.isFalse(fs.existsSync(storeFile(home)))
    })
  )

  it.scopedLive("a corrupt store does not block -k … -s …; a store holding [] is one line", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      fs.mkdirSync(path.dirname(storeFile(home)), { recursive: true })
      fs.writeFileSync(storeFile(home), "{not json")
      const who = yield* cli(home, ["connect", "whoami", "--json", "-k", KEY_A, "-s", OFFLINE])
      assert.strictEqual(who.code, 0, who.stderr)
      assert.strictEqual(JSON.parse(who.stdout).source, "flag")
      // Without the flags the store is needed, and its error says so in one line.
      const needs = yield* cli(home, ["connect", "whoami"])
      assert.strictEqual(needs.code, 255)
      assert.match(needs.stderr, /^cmdop: ~\/\.cmdop\/ssh_workspaces\.json is not valid JSON \(line 1\)[^\n]*\n$/)

      fs.writeFileSync(storeFile(home), "[]\n")
      const list = yield* cli(home, ["connect", "workspace", "list"])
      assert.strictEqual(list.code, 255)
      assert.strictEqual(
        list.stderr,
        'cmdop: ~/.cmdop/ssh_workspaces.json does not have the expected shape (line 1): expected an object {"active": "<name>", "workspaces": [{"name": …, "api_key": …, "server": …}]}, found []: left unchanged; fix or move the file, then try again\n'
      )
      assert.notInclude(list.stderr, "ReadonlyArray")

      // A field of the wrong type, or a bad name: what is wrong there, not the Schema's definition of the field.
      fs.writeFileSync(storeFile(home), '{"workspaces": 5}\n')
      const field = yield* cli(home, ["connect", "workspace", "list"])
      assert.strictEqual(
        field.stderr,
        "cmdop: ~/.cmdop/ssh_workspaces.json does not have the expected shape (workspaces: found 5; the format: docs/workspaces.md): left unchanged; fix or move the file, then try again\n"
      )
      fs.writeFileSync(storeFile(home), '{"active": "a b", "workspaces": []}\n')
      const name = yield* cli(home, ["connect", "workspace", "list"])
      assert.match(
        name.stderr,
        /^cmdop: ~\/\.cmdop\/ssh_workspaces\.json does not have the expected shape \(active: a workspace name is 1-64 letters[^;]*; the format: docs\/workspaces\.md\): left unchanged; fix or move the file, then try again\n$/
      )
      assert.notMatch(field.stderr + name.stderr, /Brand<|Redacted\(|Expected/)
    })
  )
})

describe("the agent follows the active workspace", () => {
  it.scopedLive(
    "key set, ws use and ws remove on a machine running an agent say what happens to it",
    () =>
      Effect.gen(function* () {
        const w = yield* live
        const key = yield* w.create("acme")
        const spare = yield* w.create("spare")
        const home = yield* TempHome.make("cmdop-follow-")
        const run = (args: ReadonlyArray<string>) => Processes.run(home, args)
        assert.strictEqual((yield* run(["connect", "key", "set", key, "--workspace", "acme", "-s", w.server])).code, 0)
        assert.strictEqual((yield* run(["agent", "register"])).code, 0)
        yield* Processes.daemon(home, ["agent", "start", "--foreground"], /connected to relay/)

        const again = yield* run(["connect", "key", "set", key])
        assert.match(
          again.stderr,
          /the agent on this machine \(pid \d+\) follows the active workspace: it will re-register under workspace acme with this key/
        )
        assert.strictEqual((yield* run(["connect", "ws", "add", "spare", "-k", spare, "-s", w.server])).code, 0)
        const used = yield* run(["connect", "ws", "use", "spare"])
        assert.match(
          used.stderr,
          /the agent on this machine \(pid \d+\) follows the active workspace: it will re-register under workspace spare \(it runs under acme now\)/
        )
        // The agent follows; then removing the workspace it runs under warns.
        yield* eventually(
          "the agent under spare",
          Effect.map(run(["agent", "status", "--json"]), (r) =>
            JSON.parse(r.stdout).workspace === "spare" && JSON.parse(r.stdout).state === "ONLINE" ? true : undefined
          ),
          { timeout: "30 seconds", interval: "200 millis" }
        )
        // A workspace the agent has no credential for (no key, no login): it does not re-register, it goes offline.
        assert.strictEqual((yield* run(["connect", "ws", "add", "bare", "-s", OFFLINE])).code, 0)
        const bare = yield* run(["connect", "ws", "use", "bare"])
        assert.match(
          bare.stderr,
          /warning: the agent on this machine \(pid \d+\) follows the active workspace and goes offline: under workspace bare, no credential: /
        )
        assert.notInclude(bare.stderr, "it will re-register")
        assert.strictEqual((yield* run(["connect", "ws", "use", "spare"])).code, 0)
        yield* eventually(
          "the agent back under spare",
          Effect.map(run(["agent", "status", "--json"]), (r) =>
            JSON.parse(r.stdout).workspace === "spare" && JSON.parse(r.stdout).state === "ONLINE" ? true : undefined
          ),
          { timeout: "30 seconds", interval: "200 millis" }
        )
        const removed = yield* run(["connect", "ws", "remove", "spare"])
        assert.match(removed.stderr, /warning: the agent on this machine \(pid \d+\) runs under workspace spare/)
        const other = yield* run(["connect", "ws", "remove", "acme"])
        assert.notInclude(other.stderr, "warning")
      }),
    60_000
  )
})
