/**
 * The local commands (`workspace`, `key`, `whoami`) in both worlds: on the real file under a temp HOME, and on
 * `Layers.memory` (the store's text in a cell, no file, no socket, no child process). Every command runs on a fresh
 * build of its layers, as a process would, over the one store. What only real files and processes have (modes,
 * twenty concurrent writers, the bundled binary's exit codes) runs on the file only.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Footprint from "@cmdop/test-helpers/Footprint"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Layers from "../src/Layers.js"
import { cli, type Result, runMain, spawnCli } from "./support.js"

const KEY_A = "ck_live_AAAAaaaa1111bbbb2222cccc3333dddd"
const KEY_B = "ck_test_BBBBbbbb4444cccc5555dddd6666eeee"
const storeFile = (home: string) => path.join(home, ".cmdop", "ssh_workspaces.json")
const readStore = (home: string) => JSON.parse(fs.readFileSync(storeFile(home), "utf8"))

/** Where the local commands keep the workspace store, behind one interface. */
interface Local {
  /** `cmdop <args…>` with `env` as the whole environment (plus HOME). */
  readonly cli: (args: ReadonlyArray<string>, env?: Record<string, string>) => Effect.Effect<Result>
  /** The store's text; undefined while nothing was written. */
  readonly text: Effect.Effect<string | undefined>
  /** Puts `text` where the store lives, as a hand edit would. */
  readonly seed: (text: string) => Effect.Effect<void>
  /** How messages name the store. */
  readonly shown: string
}

const onFile: Effect.Effect<Local & { readonly home: string }, never, Scope.Scope> = Effect.map(
  TempHome.make(),
  (home) => ({
    home,
    cli: (args, env = {}) => cli(home, args, env),
    text: Effect.sync(() => (fs.existsSync(storeFile(home)) ? fs.readFileSync(storeFile(home), "utf8") : undefined)),
    seed: (text) =>
      Effect.sync(() => {
        fs.mkdirSync(path.join(home, ".cmdop"), { mode: 0o700, recursive: true })
        fs.writeFileSync(storeFile(home), text, { mode: 0o600 })
      }),
    shown: "~/.cmdop/ssh_workspaces.json"
  })
)

/** The memory world; fails the test at its end if anything in it left the process. */
const inMemory: Effect.Effect<Local, never, Scope.Scope> = Effect.gen(function* () {
  const footprint = yield* Footprint.record
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => assert.deepStrictEqual(Footprint.violations(footprint), [], "the memory world left the process"))
  )
  const cell = yield* Ref.make<string | undefined>(undefined)
  return {
    cli: (args, env = {}) =>
      runMain(args, {
        env: { HOME: "/nonexistent/cmdop-memory-home", ...env },
        services: Layers.memory({ workspaces: cell })
      }),
    text: Ref.get(cell),
    seed: (text) => Ref.set(cell, text),
    shown: "memory:ssh_workspaces.json"
  }
})

const worlds: ReadonlyArray<readonly [string, Effect.Effect<Local, never, Scope.Scope>]> = [
  ["in memory", inMemory],
  ["on the real file", onFile]
]

const storeJson = (local: Local) =>
  Effect.map(local.text, (text) => (text === undefined ? undefined : JSON.parse(text)))

for (const [worldName, makeLocal] of worlds) {
  describe(`cmdop connect workspace, ${worldName}`, () => {
    it.scopedLive("add, list, use and remove, with the exact JSON shape", () =>
      Effect.gen(function* () {
        const w = yield* makeLocal
        assert.strictEqual((yield* w.cli(["connect", "workspace", "add", "production", "--api-key", KEY_A])).code, 0)
        assert.strictEqual((yield* w.cli(["connect", "ws", "add", "staging", "-s", "relay.internal:443"])).code, 0)
        assert.deepStrictEqual(yield* storeJson(w), {
          active: "production",
          workspaces: [
            { name: "production", api_key: KEY_A },
            { name: "staging", server: "relay.internal:443" }
          ]
        })

        const list = yield* w.cli(["connect", "workspace", "list"])
        assert.strictEqual(list.code, 0)
        const lines = list.stdout.trim().split("\n")
        assert.match(lines[1]!, /^\*\s+production\s+ck_live_…dddd\s+\(default\)\s+never$/)
        assert.match(lines[2]!, /^\s+staging\s+-\s+relay\.internal:443\s+never$/)
        assert.notInclude(list.stdout, KEY_A)

        const listJson = yield* w.cli(["connect", "workspace", "list", "--json"])
        const parsed = JSON.parse(listJson.stdout)
        assert.strictEqual(parsed.active, "production")
        assert.strictEqual(parsed.workspaces[0].api_key, "ck_live_…dddd")

        assert.strictEqual((yield* w.cli(["connect", "workspace", "use", "staging"])).code, 0)
        assert.strictEqual((yield* w.cli(["connect", "workspace"])).stdout, "staging\n")
        const bare = yield* w.cli(["connect", "--json", "workspace"])
        assert.strictEqual(JSON.parse(bare.stdout).active.name, "staging")

        const removed = yield* w.cli(["connect", "workspace", "remove", "staging"])
        assert.strictEqual(removed.code, 0)
        assert.include(removed.stderr, "no workspace is active")
        assert.deepStrictEqual(yield* storeJson(w), {
          active: "",
          workspaces: [{ name: "production", api_key: KEY_A }]
        })
      })
    )

    it.scopedLive("use of an unknown workspace fails with the known names and changes nothing", () =>
      Effect.gen(function* () {
        const w = yield* makeLocal
        yield* w.cli(["connect", "workspace", "add", "a"])
        const before = yield* w.text
        const r = yield* w.cli(["connect", "workspace", "use", "nope"])
        assert.strictEqual(r.code, 255)
        assert.strictEqual(r.stdout, "")
        assert.strictEqual(r.stderr.trim().split("\n").length, 1)
        assert.include(r.stderr, 'workspace "nope" does not exist (known: a)')
        assert.strictEqual(yield* w.text, before)
      })
    )

    it.scopedLive("adding a workspace that exists points at set and --force, and changes nothing", () =>
      Effect.gen(function* () {
        const w = yield* makeLocal
        yield* w.cli(["connect", "workspace", "add", "a"])
        const before = yield* w.text
        const r = yield* w.cli(["connect", "workspace", "add", "a", "--api-key", KEY_A])
        assert.strictEqual(r.code, 255)
        assert.include(r.stderr, 'workspace "a" already exists; change it with "cmdop connect workspace set a')
        assert.include(r.stderr, "--force")
        assert.strictEqual(yield* w.text, before)
      })
    )

    it.scopedLive("set keeps the web address cmdop up recorded with the server, and drops it with another server", () =>
      Effect.gen(function* () {
        const w = yield* makeLocal
        yield* w.seed(
          JSON.stringify({
            active: "local",
            workspaces: [{ name: "local", server: "127.0.0.1:50151", web_url: "http://127.0.0.1:8180" }]
          })
        )
        assert.strictEqual((yield* w.cli(["connect", "workspace", "set", "local", "--api-key", KEY_A])).code, 0)
        assert.deepStrictEqual((yield* storeJson(w)).workspaces, [
          { name: "local", server: "127.0.0.1:50151", web_url: "http://127.0.0.1:8180", api_key: KEY_A }
        ])
        assert.strictEqual(
          (yield* w.cli(["connect", "workspace", "set", "local", "-s", "relay.example:50051"])).code,
          0
        )
        assert.deepStrictEqual((yield* storeJson(w)).workspaces, [
          { name: "local", server: "relay.example:50051", api_key: KEY_A }
        ])
      })
    )

    it.scopedLive("an invalid workspace name is refused with what a name looks like", () =>
      Effect.gen(function* () {
        const w = yield* makeLocal
        const r = yield* w.cli(["connect", "workspace", "add", "bad name"])
        assert.strictEqual(r.code, 2, "a usage error")
        assert.include(r.stderr, "invalid workspace name")
        assert.isUndefined(yield* w.text)
      })
    )

    it.scopedLive("a corrupt store is reported with file and line, exit 255, and left byte-for-byte unchanged", () =>
      Effect.gen(function* () {
        const w = yield* makeLocal
        const corrupt = '{\n  "active": "x",\n  "workspaces": [,]\n}\n'
        yield* w.seed(corrupt)
        for (const args of [
          ["connect", "workspace", "list"],
          ["connect", "workspace", "add", "y"],
          ["connect", "whoami"]
        ]) {
          const r = yield* w.cli(args)
          assert.strictEqual(r.code, 255)
          assert.include(r.stderr, `${w.shown} is not valid JSON (line 3): left unchanged`)
        }
        assert.strictEqual(yield* w.text, corrupt)
      })
    )

    it.scopedLive("usage errors exit 2 and --help works at every level", () =>
      Effect.gen(function* () {
        const w = yield* makeLocal
        assert.strictEqual((yield* w.cli(["connect", "workspace", "use"])).code, 2)
        for (const args of [
          ["--help"],
          ["connect", "--help"],
          ["connect", "workspace", "--help"],
          ["connect", "key", "set", "--help"],
          ["connect", "whoami", "--help"]
        ]) {
          const r = yield* w.cli(args)
          assert.strictEqual(r.code, 0, args.join(" "))
          assert.match(r.stdout, /usage/i)
        }
      })
    )
  })

  describe(`cmdop connect key, ${worldName}`, () => {
    it.scopedLive("set, get (masked), clear, and set --workspace creating the workspace", () =>
      Effect.gen(function* () {
        const w = yield* makeLocal
        const noActive = yield* w.cli(["connect", "key", "set", KEY_A])
        assert.strictEqual(noActive.code, 255)
        // None stored: nothing to choose with "workspace use"; the line says how to make the first.
        assert.include(noActive.stderr, "no workspace is stored yet; create one")
        assert.include(noActive.stderr, "cmdop connect key set <key> --workspace <name>")
        assert.notInclude(noActive.stderr, "workspace use")

        assert.strictEqual((yield* w.cli(["connect", "key", "set", KEY_A, "--workspace", "ci"])).code, 0)
        assert.deepStrictEqual(yield* storeJson(w), { active: "ci", workspaces: [{ name: "ci", api_key: KEY_A }] })
        const got = yield* w.cli(["connect", "key", "get"])
        assert.strictEqual(got.stdout, "ci  ck_live_…dddd\n")
        assert.notInclude(got.stdout + got.stderr, KEY_A)

        const deprecated = yield* w.cli(["connect", "set-key", KEY_B])
        assert.strictEqual(deprecated.code, 0)
        assert.include(deprecated.stderr, "key set")
        assert.strictEqual((yield* storeJson(w)).workspaces[0].api_key, KEY_B)

        assert.strictEqual((yield* w.cli(["connect", "key", "clear"])).code, 0)
        assert.deepStrictEqual((yield* storeJson(w)).workspaces[0], { name: "ci" })
        const after = yield* w.cli(["connect", "key", "get", "--json"])
        assert.deepStrictEqual(JSON.parse(after.stdout), { workspace: "ci", api_key: null })
      })
    )

    it.scopedLive("a key with whitespace is refused and nothing is written", () =>
      Effect.gen(function* () {
        const w = yield* makeLocal
        const r = yield* w.cli(["connect", "key", "set", "ck_live_abc def", "--workspace", "x"])
        assert.strictEqual(r.code, 2, "a usage error")
        assert.include(r.stderr, "whitespace")
        assert.isUndefined(yield* w.text)
      })
    )
  })

  describe(`cmdop connect whoami, ${worldName}`, () => {
    it.scopedLive("prints exactly source, workspace, server and the masked key, following the precedence chain", () =>
      Effect.gen(function* () {
        const w = yield* makeLocal
        yield* w.cli(["connect", "workspace", "add", "prod", "--api-key", KEY_A, "--server", "prod.relay:443"])
        yield* w.cli(["connect", "workspace", "add", "dev", "--api-key", KEY_B])
        const before = yield* w.text

        const fromStore = JSON.parse((yield* w.cli(["connect", "whoami", "--json"])).stdout)
        assert.deepStrictEqual(fromStore, {
          source: "workspace",
          workspace: "prod",
          server: "prod.relay:443",
          api_key: "ck_live_…dddd",
          relay: null
        })

        const named = JSON.parse((yield* w.cli(["connect", "--workspace", "dev", "whoami", "--json"])).stdout)
        assert.deepStrictEqual(named, {
          source: "workspace",
          workspace: "dev",
          server: "127.0.0.1:50051",
          api_key: "ck_test_…eeee",
          relay: null
        })

        const env = JSON.parse(
          (yield* w.cli(["connect", "whoami", "--json"], { CMDOP_API_KEY: KEY_B, CMDOP_GRPC_SERVER: "env.relay:1" }))
            .stdout
        )
        assert.deepStrictEqual(env, {
          source: "env",
          workspace: "prod",
          server: "env.relay:1",
          api_key: "ck_test_…eeee",
          relay: null
        })

        const flag = yield* w.cli(["connect", "whoami", "--json", "-k", KEY_B, "-s", "flag.relay:2"], {
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
        assert.strictEqual(yield* w.text, before)
      })
    )

    it.scopedLive("with no credential anywhere, says how to get one", () =>
      Effect.gen(function* () {
        const w = yield* makeLocal
        const r = yield* w.cli(["connect", "whoami"])
        assert.strictEqual(r.code, 255)
        assert.strictEqual(
          r.stderr,
          'cmdop: no credential: run "cmdop login", "cmdop connect key set <key>", or pass --api-key\n'
        )
      })
    )

    it.scopedLive(
      "an active workspace missing from the store is named in the error; add makes the new one active",
      () =>
        Effect.gen(function* () {
          const w = yield* makeLocal
          yield* w.seed('{"active":"nope","workspaces":[]}')
          const r = yield* w.cli(["connect", "--list"])
          assert.strictEqual(r.code, 255)
          assert.include(r.stderr, 'the active workspace "nope" does not exist (no workspace is stored)')
          assert.include(r.stderr, '"cmdop connect workspace use <name>" picks one')
          const added = yield* w.cli(["connect", "workspace", "add", "foo", "--api-key", KEY_A])
          assert.strictEqual(added.code, 0, added.stderr)
          assert.include(added.stdout, "added workspace foo (active)")
          assert.deepStrictEqual(yield* storeJson(w), { active: "foo", workspaces: [{ name: "foo", api_key: KEY_A }] })
          // The call resolves the new active workspace (whether a relay accepts its made-up key is another matter).
          const who = JSON.parse((yield* w.cli(["connect", "whoami", "--json"])).stdout)
          assert.deepStrictEqual([who.source, who.workspace], ["workspace", "foo"])
        })
    )
  })
}

describe("the workspace store on the real file", () => {
  it.scopedLive("is 0600 in a 0700 directory", () =>
    Effect.gen(function* () {
      const w = yield* onFile
      assert.strictEqual((yield* w.cli(["connect", "workspace", "add", "production", "--api-key", KEY_A])).code, 0)
      assert.strictEqual(fs.statSync(storeFile(w.home)).mode & 0o777, 0o600)
      assert.strictEqual(fs.statSync(path.dirname(storeFile(w.home))).mode & 0o777, 0o700)
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
      // With --json, the failure is also one JSON document on stdout.
      assert.strictEqual(JSON.parse(r.stdout).exit_code, 255)
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
