/**
 * The daily commands, as the user types them and what they see: `relay workspace list` and `relay signing-key list`
 * on the relay host; `exec` never running on a machine picked by a part of its name.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { memory } from "./World.js"

describe("relay admin listings", () => {
  it.scopedLive("relay workspace list: every workspace with its machines; --json for scripts", () =>
    Effect.gen(function* () {
      const w = yield* memory
      // $ cmdop relay workspace list        (a fresh relay)
      const empty = yield* w.admin(["workspace", "list"])
      assert.strictEqual(empty.code, 0, empty.stderr)
      assert.strictEqual(empty.stdout, "")
      assert.include(empty.stderr, "no workspaces on this relay yet; create one: cmdop relay workspace create <name>")

      const acme = yield* w.create("acme")
      yield* w.create("beta")
      yield* w.agent(acme, "box-1")
      yield* w.cli(acme, ["key", "set", acme])
      // $ cmdop relay workspace list
      const listed = yield* w.admin(["workspace", "list"])
      assert.strictEqual(listed.code, 0, listed.stderr)
      const lines = listed.stdout.trimEnd().split("\n")
      assert.match(lines[0]!, /^WORKSPACE\s+ID\s+CREATED\s+KEY GEN\s+MACHINES$/)
      assert.match(lines[1]!, /^acme\s+ws_\S+\s+\d{4}-\d\d-\d\d \d\d:\d\dZ\s+1\s+1 \(1 online\)$/)
      assert.match(lines[2]!, /^beta\s+ws_\S+\s+.*\s+1\s+0 \(0 online\)$/)
      assert.strictEqual(lines.length, 3)
      assert.notInclude(listed.stdout, acme, "never a key")

      // $ cmdop relay key rotate beta; cmdop relay workspace list --json
      assert.strictEqual((yield* w.admin(["key", "rotate", "beta"])).code, 0)
      const json = JSON.parse((yield* w.admin(["workspace", "list", "--json"])).stdout)
      assert.deepStrictEqual(
        json.workspaces.map((x: Record<string, unknown>) => [x.name, x.key_generation, x.machines, x.online]),
        [
          ["acme", 1, 1, 1],
          ["beta", 2, 0, 0]
        ]
      )
      assert.match(json.workspaces[0].created_at, /^\d{4}-\d\d-\d\dT/)
    })
  )

  it.scopedLive("relay signing-key list: which key signs, which still verify, which are retired", () =>
    Effect.gen(function* () {
      const w = yield* memory
      // $ cmdop relay signing-key list       (the relay made its first key when it started)
      const first = yield* w.admin(["signing-key", "list"])
      assert.strictEqual(first.code, 0, first.stderr)
      assert.match(
        first.stdout,
        /^KID\s+ALGORITHM\s+STATUS\s+CREATED\s+RETIRED\nsk_\S+\s+HS256\s+current\s+\d{4}-\d\d-\d\d \d\d:\d\dZ\s+-\n$/
      )
      assert.strictEqual(first.stderr, "")

      // $ cmdop relay signing-key rotate; cmdop relay signing-key list
      const rotated = JSON.parse((yield* w.admin(["signing-key", "rotate", "--json"])).stdout)
      const listed = yield* w.admin(["signing-key", "list"])
      assert.strictEqual(listed.code, 0, listed.stderr)
      const lines = listed.stdout.trimEnd().split("\n")
      assert.match(lines[0]!, /^KID\s+ALGORITHM\s+STATUS\s+CREATED\s+RETIRED$/)
      assert.match(lines[1]!, new RegExp(`^${rotated.previous}\\s+\\S+\\s+valid\\s+\\S+ \\S+\\s+-$`))
      assert.match(lines[2]!, new RegExp(`^${rotated.current}\\s+\\S+\\s+current\\s+`))
      assert.include(
        listed.stderr,
        `links signed with ${rotated.previous} still work; retire with: cmdop relay signing-key retire <kid>`
      )

      // $ cmdop relay signing-key retire OLD; cmdop relay signing-key list --json
      assert.strictEqual((yield* w.admin(["signing-key", "retire", rotated.previous])).code, 0)
      const after = JSON.parse((yield* w.admin(["signing-key", "list", "--json"])).stdout).signing_keys
      assert.deepStrictEqual(
        after.map((k: Record<string, unknown>) => [k.kid, k.status]),
        [
          [rotated.previous, "retired"],
          [rotated.current, "current"]
        ]
      )
      assert.match(after[0].retired_at, /^\d{4}-\d\d-\d\dT/)
      assert.notInclude(JSON.stringify(after), "material")
    })
  )
})

describe("machine names for exec", () => {
  it.scopedLive("exec takes the name, a prefix or the id; a part of a name is refused with the name to use", () =>
    Effect.gen(function* () {
      const w = yield* memory
      const key = yield* w.create("acme")
      yield* w.agent(key, "db-primary")
      yield* w.agent(key, "web-1")
      const id = JSON.parse((yield* w.cli(key, ["--list", "--json"])).stdout).machines.find(
        (m: { hostname: string }) => m.hostname === "db-primary"
      ).id as string

      // $ cmdop connect exec db -- echo ran      (a prefix of the hostname)
      const byPrefix = yield* w.cli(key, ["exec", "db", "--", "echo", "ran"])
      assert.strictEqual(byPrefix.code, 0, byPrefix.stderr)
      assert.strictEqual(byPrefix.stdout, "ran\n")
      // $ cmdop connect exec <first 8 of the id> -- echo ran
      const byId = yield* w.cli(key, ["exec", id.slice(0, 8), "--", "echo", "ran"])
      assert.strictEqual(byId.code, 0, byId.stderr)
      assert.strictEqual(byId.stdout, "ran\n")

      // $ cmdop connect exec primary -- touch f     (only a part of db-primary's name: refused, nothing runs)
      const part = yield* w.cli(key, ["exec", "primary", "--", "echo", "ran"])
      assert.strictEqual(part.code, 255)
      assert.strictEqual(part.stdout, "")
      assert.strictEqual(
        part.stderr,
        'cmdop: machine "primary" matches db-primary only by a substring of its name; exec needs the name, a prefix of it, or the id: cmdop connect exec db-primary -- …\n'
      )
      // $ cmdop connect primary --list-sessions     (other commands still take a unique part, as the help says)
      const listed = yield* w.cli(key, ["primary", "--list-sessions", "--json"])
      assert.strictEqual(listed.code, 0, listed.stderr)
      assert.strictEqual(JSON.parse(listed.stdout).hostname, "db-primary")
      // $ cmdop connect exec b- -- true      (a part of both names: ambiguous, both listed)
      const both = yield* w.cli(key, ["exec", "b-", "--", "true"])
      assert.strictEqual(both.code, 255)
      assert.match(both.stderr, /^cmdop: machine "b-" is ambiguous: (db-primary|web-1) .*(web-1|db-primary) /)
    })
  )
})
