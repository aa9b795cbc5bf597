/**
 * A stranger's first steps, as they type them: the README and the first `--help` page are all they have, so the
 * overview must name every command there is, and every link between the docs must lead somewhere; a broken file
 * they meet says what to do about it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { authLine } from "../src/commands/attach.js"
import * as Table from "../src/CommandTable.js"
import * as Processes from "@cmdop/testkit/Processes"
import { cli } from "./support.js"

const repo = fileURLToPath(new URL("../../../", import.meta.url))

describe("a stranger's first --help", () => {
  it.scopedLive("$ cmdop --help names every top-level command, login and logout included", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const r = yield* cli(home, ["--help"])
      assert.strictEqual(r.code, 0)
      assert.strictEqual(r.stderr, "")
      const commands = r.stdout.slice(r.stdout.indexOf("Commands:"), r.stdout.indexOf("Start here:"))
      // `version` is the same as --version, which the page's last line names.
      for (const node of Table.root.subcommands ?? []) {
        if (node.name === "version") continue
        assert.match(commands, new RegExp(`\\b${node.name}\\b`), `cmdop --help does not mention "${node.name}"`)
      }
      // One column: every command's description starts at the same place.
      const starts = commands
        .split("\n")
        .filter((l) => /^ {2}\S/.test(l))
        .map((l) => l.match(/^ {2}\S+\s+/)![0].length)
      assert.strictEqual(new Set(starts).size, 1, `descriptions not aligned:\n${commands}`)
    })
  )
})

describe("a command group typed alone", () => {
  /** Every group of the table as its words (`["relay", "key"]`), aliases left out. */
  const groupsOf = (node: Table.Node, words: ReadonlyArray<string> = []): ReadonlyArray<ReadonlyArray<string>> =>
    (node.subcommands ?? []).flatMap((c) =>
      c.subcommands === undefined ? [] : [[...words, c.name], ...groupsOf(c, [...words, c.name])]
    )

  it.scopedLive("$ cmdop agent (relay key, connect key, …) prints the group's page, never @effect/cli's", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const groups = groupsOf(Table.root)
      assert.isAbove(groups.length, 8)
      for (const words of groups) {
        const r = yield* cli(home, words)
        const where = `cmdop ${words.join(" ")}`
        // @effect/cli's own page: ANSI colours even when piped, a "$ key" usage line and --wizard.
        assert.notMatch(r.stdout + r.stderr, /--wizard|\x1b\[/, `${where} printed @effect/cli's help`)
        const own = ["connect", "connect workspace", "connect share"].includes(words.join(" "))
        if (own) continue // they do something alone: the picker, the active workspace, "which machine?"
        const help = yield* cli(home, [...words, "--help"])
        assert.strictEqual(r.code, 0, where)
        assert.strictEqual(r.stdout, help.stdout, `${where} is not its --help page`)
      }
    })
  )
})

describe("the docs a stranger reads", () => {
  const files = ["README.md", ...fs.readdirSync(path.join(repo, "docs")).map((f) => `docs/${f}`)].filter((f) =>
    f.endsWith(".md")
  )
  /** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
  const anchor = (heading: string) =>
    heading
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, "")
      .replace(/ /g, "-")

  it("every relative link in README.md and docs/*.md leads to a file, and its #anchor to a heading", () => {
    const broken: Array<string> = []
    for (const file of files) {
      const text = fs.readFileSync(path.join(repo, file), "utf8")
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue
        const [where, hash] = target!.split("#")
        const resolved = where ? path.join(repo, path.dirname(file), where) : path.join(repo, file)
        if (!fs.existsSync(resolved)) {
          broken.push(`${file}: ${target} (no such file)`)
          continue
        }
        if (hash === undefined || !resolved.endsWith(".md")) continue
        const headings = fs
          .readFileSync(resolved, "utf8")
          .split("\n")
          .filter((l) => /^#+ /.test(l))
          .map((l) => anchor(l.replace(/^#+ /, "")))
        if (!headings.includes(hash)) broken.push(`${file}: ${target} (no heading #${hash})`)
      }
    }
    assert.deepStrictEqual(broken, [])
  })

  it('no "Planned" section lists a command the CLI has', () => {
    const commands = ["cmdop login", "cmdop logout", "workspace sync", "relay user add", "permissions.yaml"]
    const stale: Array<string> = []
    for (const file of files) {
      const text = fs.readFileSync(path.join(repo, file), "utf8")
      const planned = text.match(/^## Planned\n([\s\S]*?)(?=^## |(?![\s\S]))/m)?.[1] ?? ""
      for (const c of commands) if (planned.includes(c)) stale.push(`${file}: "Planned" lists ${c}`)
    }
    assert.deepStrictEqual(stale, [])
  })
})

describe("a broken agent.json", () => {
  it.scopedLive(
    "agent start, in the background or not, says what is wrong with it and how to go on; the file stays",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make()
        const file = path.join(home, ".cmdop", "agent.json")
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
        fs.writeFileSync(file, '{"broken', { mode: 0o600 })
        const reason =
          '~/.cmdop/agent.json is not valid JSON: left unchanged; it holds this machine\'s id and secret: fix it, or move it away and run "cmdop agent register" to register the machine anew'
        const background = yield* Processes.run(home, ["agent", "start"], { env: { CMDOP_SERVER: "127.0.0.1:1" } })
        assert.strictEqual(background.code, 255)
        assert.strictEqual(background.stderr, `cmdop: the agent did not start: ${reason}; see ~/.cmdop/agent.log\n`)
        const foreground = yield* Processes.run(home, ["agent", "start", "--foreground"], {
          env: { CMDOP_SERVER: "127.0.0.1:1" }
        })
        assert.strictEqual(foreground.code, 255)
        assert.strictEqual(foreground.stderr, `cmdop: ${reason}\n`)
        assert.strictEqual(fs.readFileSync(file, "utf8"), '{"broken')
      })
  )
})

describe("an admin command on a host with no relay store", () => {
  it.scopedLive("says it is creating one (a cluster's host forgot --db), once", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const first = yield* Processes.run(home, ["relay", "workspace", "create", "acme", "--json"])
      assert.strictEqual(first.code, 0, first.stderr)
      assert.strictEqual(
        first.stderr,
        "cmdop: notice: no relay store in ~/.cmdop/relay yet; creating an embedded one there (for a cluster's PostgreSQL store, pass --db postgres://… or set CMDOP_RELAY_DB)\n"
      )
      assert.isTrue(fs.existsSync(path.join(home, ".cmdop", "relay", "relay.db")))
      const second = yield* Processes.run(home, ["relay", "workspace", "list", "--json"])
      assert.strictEqual(second.code, 0, second.stderr)
      assert.strictEqual(second.stderr, "")
    })
  )
})

describe("the auth line of cmdop connect <host>", () => {
  it("names a guest's link once, a signed-in person by email, a key masked", () => {
    const guest = authLine({ workspaceName: "acme", kind: "guest", principal: "share sl_0123abcd" }, "eyJhbGci…-A0c")
    assert.strictEqual(guest, "auth ok: workspace acme, share link sl_0123abcd")
    const user = authLine({ workspaceName: "acme", kind: "user", principal: "alice@example.com" }, "eyJhbGci…x9Zq")
    assert.strictEqual(user, "auth ok: workspace acme, user alice@example.com")
    const key = authLine({ workspaceName: "acme", kind: "key", principal: "ck_live_tfAo" }, "ck_live_…iZXP")
    assert.strictEqual(key, "auth ok: workspace acme, key ck_live_…iZXP")
  })
})
