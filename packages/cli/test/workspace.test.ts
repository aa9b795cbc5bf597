import { assert, describe, it } from "@effect/vitest"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { cli, spawnCli } from "./support.js"

const KEY_A = "ck_live_AAAAaaaa1111bbbb2222cccc3333dddd"
const KEY_B = "ck_test_BBBBbbbb4444cccc5555dddd6666eeee"
const storeFile = (home: string) => path.join(home, ".cmdop", "ssh_workspaces.json")
const readStore = (home: string) => JSON.parse(fs.readFileSync(storeFile(home), "utf8"))

describe("cmdop connect workspace", () => {
  it.scopedLive("add, list, use and remove work on the real file, 0600 with the exact JSON shape", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      assert.strictEqual((yield* cli(home, ["connect", "workspace", "add", "production", "--api-key", KEY_A])).code, 0)
      assert.strictEqual((yield* cli(home, ["connect", "ws", "add", "staging", "-s", "relay.internal:443"])).code, 0)
      assert.deepStrictEqual(readStore(home), {
        active: "production",
        workspaces: [
          { name: "production", api_key: KEY_A },
          { name: "staging", server: "relay.internal:443" }
        ]
      })
      assert.strictEqual(fs.statSync(storeFile(home)).mode & 0o777, 0o600)
      assert.strictEqual(fs.statSync(path.dirname(storeFile(home))).mode & 0o777, 0o700)

      const list = yield* cli(home, ["connect", "workspace", "list"])
      assert.strictEqual(list.code, 0)
      const lines = list.stdout.trim().split("\n")
      assert.match(lines[1]!, /^\*\s+production\s+ck_live_…dddd\s+\(default\)\s+never$/)
      assert.match(lines[2]!, /^\s+staging\s+-\s+relay\.internal:443\s+never$/)
      assert.notInclude(list.stdout, KEY_A)

      const listJson = yield* cli(home, ["connect", "workspace", "list", "--json"])
      const parsed = JSON.parse(listJson.stdout)
      assert.strictEqual(parsed.active, "production")
      assert.strictEqual(parsed.workspaces[0].api_key, "ck_live_…dddd")

      assert.strictEqual((yield* cli(home, ["connect", "workspace", "use", "staging"])).code, 0)
      assert.strictEqual((yield* cli(home, ["connect", "workspace"])).stdout, "staging\n")
      const bare = yield* cli(home, ["connect", "--json", "workspace"])
      assert.strictEqual(JSON.parse(bare.stdout).active.name, "staging")

      const removed = yield* cli(home, ["connect", "workspace", "remove", "staging"])
      assert.strictEqual(removed.code, 0)
      assert.include(removed.stderr, "no workspace is active")
      assert.deepStrictEqual(readStore(home), { active: "", workspaces: [{ name: "production", api_key: KEY_A }] })
    })
  )

  it.scopedLive("use of an unknown workspace fails with the known names and changes nothing", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      yield* cli(home, ["connect", "workspace", "add", "a"])
      const before = fs.readFileSync(storeFile(home), "utf8")
      const r = yield* cli(home, ["connect", "workspace", "use", "nope"])
      assert.strictEqual(r.code, 255)
      assert.strictEqual(r.stdout, "")
      assert.strictEqual(r.stderr.trim().split("\n").length, 1)
      assert.include(r.stderr, 'workspace "nope" does not exist (known: a)')
      assert.strictEqual(fs.readFileSync(storeFile(home), "utf8"), before)
    })
  )

  it.scopedLive("an invalid workspace name is refused with what a name looks like", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const r = yield* cli(home, ["connect", "workspace", "add", "bad name"])
      assert.strictEqual(r.code, 255)
      assert.include(r.stderr, "invalid workspace name")
      assert.isFalse(fs.existsSync(storeFile(home)))
    })
  )

  it.scopedLive("a corrupt store is reported with file and line, exit 255, and left byte-for-byte unchanged", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      fs.mkdirSync(path.join(home, ".cmdop"), { mode: 0o700 })
      const corrupt = '{\n  "active": "x",\n  "workspaces": [,]\n}\n'
      fs.writeFileSync(storeFile(home), corrupt, { mode: 0o600 })
      for (const args of [
        ["connect", "workspace", "list"],
        ["connect", "workspace", "add", "y"],
        ["connect", "whoami"]
      ]) {
        const r = yield* cli(home, args)
        assert.strictEqual(r.code, 255)
        assert.include(r.stderr, "~/.cmdop/ssh_workspaces.json is not valid JSON (line 3): left unchanged")
      }
      assert.strictEqual(fs.readFileSync(storeFile(home), "utf8"), corrupt)
    })
  )

  it.scopedLive("usage errors exit 2 and --help works at every level", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      assert.strictEqual((yield* cli(home, ["connect", "workspace", "use"])).code, 2)
      for (const args of [
        ["--help"],
        ["connect", "--help"],
        ["connect", "workspace", "--help"],
        ["connect", "key", "set", "--help"],
        ["connect", "whoami", "--help"]
      ]) {
        const r = yield* cli(home, args)
        assert.strictEqual(r.code, 0, args.join(" "))
        assert.match(r.stdout, /usage/i)
      }
    })
  )
})

describe("cmdop connect key", () => {
  it.scopedLive("set, get (masked), clear, and set --workspace creating the workspace", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const noActive = yield* cli(home, ["connect", "key", "set", KEY_A])
      assert.strictEqual(noActive.code, 255)
      assert.include(noActive.stderr, "no active workspace")

      assert.strictEqual((yield* cli(home, ["connect", "key", "set", KEY_A, "--workspace", "ci"])).code, 0)
      assert.deepStrictEqual(readStore(home), { active: "ci", workspaces: [{ name: "ci", api_key: KEY_A }] })
      const got = yield* cli(home, ["connect", "key", "get"])
      assert.strictEqual(got.stdout, "ci  ck_live_…dddd\n")
      assert.notInclude(got.stdout + got.stderr, KEY_A)

      const deprecated = yield* cli(home, ["connect", "set-key", KEY_B])
      assert.strictEqual(deprecated.code, 0)
      assert.include(deprecated.stderr, "key set")
      assert.strictEqual(readStore(home).workspaces[0].api_key, KEY_B)

      assert.strictEqual((yield* cli(home, ["connect", "key", "clear"])).code, 0)
      assert.deepStrictEqual(readStore(home).workspaces[0], { name: "ci" })
      const after = yield* cli(home, ["connect", "key", "get", "--json"])
      assert.deepStrictEqual(JSON.parse(after.stdout), { workspace: "ci", api_key: null })
    })
  )

  it.scopedLive("a key with whitespace is refused and nothing is written", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const r = yield* cli(home, ["connect", "key", "set", "ck_live_abc def", "--workspace", "x"])
      assert.strictEqual(r.code, 255)
      assert.include(r.stderr, "whitespace")
      assert.isFalse(fs.existsSync(storeFile(home)))
    })
  )
})

describe("cmdop connect whoami", () => {
  it.scopedLive("prints exactly source, workspace, server and the masked key, following the precedence chain", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      yield* cli(home, ["connect", "workspace", "add", "prod", "--api-key", KEY_A, "--server", "prod.relay:443"])
      yield* cli(home, ["connect", "workspace", "add", "dev", "--api-key", KEY_B])
      const before = fs.readFileSync(storeFile(home), "utf8")

      const fromStore = JSON.parse((yield* cli(home, ["connect", "whoami", "--json"])).stdout)
      assert.deepStrictEqual(fromStore, {
        source: "workspace",
        workspace: "prod",
        server: "prod.relay:443",
        api_key: "ck_live_…dddd",
        relay: null
      })

      const named = JSON.parse((yield* cli(home, ["connect", "--workspace", "dev", "whoami", "--json"])).stdout)
      assert.deepStrictEqual(named, {
        source: "workspace",
        workspace: "dev",
        server: "127.0.0.1:50051",
        api_key: "ck_test_…eeee",
        relay: null
      })

      const env = JSON.parse(
        (yield* cli(home, ["connect", "whoami", "--json"], { CMDOP_API_KEY: KEY_B, CMDOP_GRPC_SERVER: "env.relay:1" }))
          .stdout
      )
      assert.deepStrictEqual(env, {
        source: "env",
        workspace: "prod",
        server: "env.relay:1",
        api_key: "ck_test_…eeee",
        relay: null
      })

      const flag = yield* cli(home, ["connect", "whoami", "--json", "-k", KEY_B, "-s", "flag.relay:2"], {
        CMDOP_API_KEY: KEY_A
      })
      assert.deepStrictEqual(JSON.parse(flag.stdout), {
        source: "flag",
        workspace: "prod",
        server: "flag.relay:2",
        api_key: "ck_test_…eeee",
        relay: null
      })
      assert.notInclude(flag.stdout + flag.stderr, KEY_B)

      // Per-call overrides never touch saved state.
      assert.strictEqual(fs.readFileSync(storeFile(home), "utf8"), before)
    })
  )

  it.scopedLive("with no credential anywhere, says how to get one", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const r = yield* cli(home, ["connect", "whoami"])
      assert.strictEqual(r.code, 255)
      assert.strictEqual(
        r.stderr,
        'cmdop: no credential: run "cmdop login", "cmdop connect key set <key>", or pass --api-key\n'
      )
    })
  )
})

describe("the real binary", () => {
  it.scopedLive("twenty concurrent CLI processes writing different workspaces all land", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const results = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => spawnCli(home, ["connect", "workspace", "add", `w${i}`, "--api-key", `${KEY_A}${i}`]),
        { concurrency: "unbounded" }
      )
      results.forEach((r, i) => assert.strictEqual(r.code, 0, `process ${i}: ${r.stderr}`))
      const names = readStore(home)
        .workspaces.map((w: { name: string }) => w.name)
        .sort()
      assert.deepStrictEqual(names, Array.from({ length: 20 }, (_, i) => `w${i}`).sort())
      assert.deepStrictEqual(fs.readdirSync(path.join(home, ".cmdop")), ["ssh_workspaces.json"])
      assert.strictEqual(fs.statSync(storeFile(home)).mode & 0o777, 0o600)
    })
  )

  it.scopedLive("exit codes and streams: errors on stderr with 255, results on stdout", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const r = yield* spawnCli(home, ["connect", "whoami", "--json"])
      assert.strictEqual(r.code, 255)
      assert.strictEqual(r.stdout, "")
      assert.include(r.stderr, "no credential")
      const ok = yield* spawnCli(home, ["connect", "whoami", "--json"], { CMDOP_API_KEY: KEY_A })
      assert.strictEqual(ok.code, 0)
      assert.strictEqual(JSON.parse(ok.stdout).source, "env")
      const usage = yield* spawnCli(home, ["connect", "workspace", "use"])
      assert.strictEqual(usage.code, 2)
      assert.include(usage.stderr, 'see "cmdop connect workspace use --help"')
      // A mistyped flag is a usage error with a suggestion, never a remote command named "--timout".
      const typo = yield* spawnCli(home, ["connect", "exec", "box", "--timout", "5s", "--", "true"], {
        CMDOP_API_KEY: KEY_A
      })
      assert.strictEqual(typo.code, 2)
      assert.include(typo.stderr, "unknown option --timout for exec (did you mean --timeout?)")
      const typo2 = yield* spawnCli(home, ["connect", "--lst"], { CMDOP_API_KEY: KEY_A })
      assert.strictEqual(typo2.code, 2)
      assert.include(typo2.stderr, "unknown option --lst for connect (did you mean --list?)")
    })
  )
})
