/**
 * Machine names (spec 4.3, docs/machine-names.md): the resolver does exactly what the help says. A full id, an
 * exact hostname or name, a prefix (of the id from 4 characters, of a hostname or name from 2), and only when loose
 * a part of a hostname or name; `loose: false` (what `exec` uses) never picks a machine by a part.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Machine from "@cmdop/domain/Machine"

const machine = (id: string, hostname: string, name = hostname) =>
  new Machine.Machine({
    id: id as Machine.MachineId,
    workspaceId: "ws_1" as Machine.WorkspaceId,
    hostname,
    name,
    os: "linux",
    agentVersion: "0.1.0",
    online: true
  })

const A = machine("0a1b2c3d-0000-4000-8000-000000000001", "web-1", "Frontend")
const B = machine("0a1b9999-0000-4000-8000-000000000002", "web-2")
const C = machine("c0ffee00-0000-4000-8000-000000000003", "db-primary", "prod-db")
const fleet = [A, B, C]

const pick = (query: string, options?: Machine.ResolveOptions) =>
  Effect.runSync(Effect.either(Machine.resolveMatch(fleet, query, options)))

const picked = (query: string, options?: Machine.ResolveOptions) => {
  const r = pick(query, options)
  return Either.isRight(r) ? [r.right.machine.hostname, r.right.kind] : [r.left.reason]
}

describe("Machine.resolve: the rule, step by step", () => {
  it("a full id, any case; an exact hostname, any case; an exact name", () => {
    assert.deepStrictEqual(picked(C.id.toUpperCase()), ["db-primary", "id"])
    assert.deepStrictEqual(picked("WEB-1"), ["web-1", "hostname"])
    assert.deepStrictEqual(picked("Frontend"), ["web-1", "name"])
    assert.deepStrictEqual(picked("  web-2 "), ["web-2", "hostname"], "trimmed")
  })

  it("id prefixes from 4 characters; shorter ones are not ids", () => {
    assert.deepStrictEqual(picked("c0ffee"), ["db-primary", "prefix"])
    assert.deepStrictEqual(picked("c0ff"), ["db-primary", "prefix"])
    assert.deepStrictEqual(picked("c0f"), ["NotFound"], "3 characters never reach the id")
    assert.deepStrictEqual(picked("0a1b"), ["Ambiguous"], "a prefix of two ids")
    assert.deepStrictEqual(picked("0a1b2"), ["web-1", "prefix"])
  })

  it("hostname and name prefixes from 2 characters; one character never matches", () => {
    assert.deepStrictEqual(picked("db"), ["db-primary", "prefix"])
    assert.deepStrictEqual(picked("prod"), ["db-primary", "prefix"], "a prefix of the name")
    assert.deepStrictEqual(picked("web"), ["Ambiguous"])
    assert.deepStrictEqual(picked("d"), ["NotFound"])
  })

  it("a part of a hostname or name only when loose; exec's strict rule refuses it", () => {
    assert.deepStrictEqual(picked("primary"), ["db-primary", "part"])
    assert.deepStrictEqual(picked("primary", { loose: false }), ["NotFound"])
    assert.deepStrictEqual(picked("-db", { loose: false }), ["NotFound"])
    assert.deepStrictEqual(picked("-db"), ["db-primary", "part"])
    assert.deepStrictEqual(picked("eb-"), ["Ambiguous"])
  })

  it("a prefix beats a part: db picks db-primary, not also a machine with db inside", () => {
    const withMydb = [...fleet, machine("11111111-0000-4000-8000-000000000004", "mydb")]
    const r = Effect.runSync(Machine.resolveMatch(withMydb, "db"))
    assert.strictEqual(r.machine.hostname, "db-primary")
    assert.strictEqual(r.kind, "prefix")
  })
})

// Fleets with overlapping names, as the store allows them: hostnames and names unique across both, ignoring case.
const word = FastCheck.array(FastCheck.constantFrom("a", "b", "c", "1", "-"), { minLength: 1, maxLength: 6 }).map(
  (cs) => "a" + cs.join("")
)
const fleets = FastCheck.uniqueArray(
  FastCheck.tuple(FastCheck.uuid(), word, FastCheck.option(word, { nil: undefined })),
  {
    minLength: 1,
    maxLength: 6,
    selector: ([id]) => id
  }
)
  .map((rows) => {
    const seen = new Set<string>()
    const out: Array<Machine.Machine> = []
    for (const [id, host, name] of rows) {
      const n = name ?? host
      if (seen.has(host.toLowerCase()) || seen.has(n.toLowerCase())) continue
      seen.add(host.toLowerCase())
      seen.add(n.toLowerCase())
      out.push(machine(id, host, n))
    }
    return out
  })
  .filter((ms) => ms.length > 0)
const query = FastCheck.oneof(
  word,
  FastCheck.string({ maxLength: 8 }),
  FastCheck.hexaString({ minLength: 1, maxLength: 10 })
)

const resolved = (ms: ReadonlyArray<Machine.Machine>, q: string, options?: Machine.ResolveOptions) => {
  const r = Effect.runSync(Effect.either(Machine.resolveMatch(ms, q, options)))
  return Either.isRight(r) ? r.right : undefined
}

describe("Machine.resolve: properties", () => {
  it.prop("every machine is found by its id and by its exact hostname", [fleets], ([ms]) => {
    for (const m of ms) {
      assert.strictEqual(resolved(ms, m.id, { loose: false })?.machine, m)
      assert.strictEqual(resolved(ms, m.hostname.toUpperCase(), { loose: false })?.machine, m)
    }
  })

  it.prop("strict never picks by a part: the query is the id, a name, or a prefix", [fleets, query], ([ms, q]) => {
    const r = resolved(ms, q, { loose: false })
    if (r === undefined) return
    const t = q.trim().toLowerCase()
    const { hostname, id, name } = r.machine
    assert.isTrue(
      id === t ||
        hostname.toLowerCase() === t ||
        name === q.trim() ||
        (t.length >= Machine.MIN_ID_PREFIX && id.startsWith(t)) ||
        (t.length >= Machine.MIN_PARTIAL && (hostname.toLowerCase().startsWith(t) || name.toLowerCase().startsWith(t))),
      `${q} -> ${hostname}`
    )
    assert.notStrictEqual(r.kind, "part")
  })

  it.prop(
    "loose agrees with strict wherever strict decides, and a pick is the only match",
    [fleets, query],
    ([ms, q]) => {
      const strict = resolved(ms, q, { loose: false })
      const loose = resolved(ms, q)
      if (strict !== undefined) assert.strictEqual(loose?.machine, strict.machine)
      if (loose !== undefined) {
        assert.strictEqual(Machine.matches(ms, q)?.found.length, 1)
        if (q.trim().length < Machine.MIN_PARTIAL) assert.oneOf(loose.kind, ["hostname", "name"])
      }
    }
  )
})

describe("Machine.resolve: a name that matches nothing", () => {
  const missed = (query: string) => {
    const r = pick(query, { loose: false })
    assert.isTrue(Either.isLeft(r) && r.left.reason === "NotFound", query)
    return Either.isLeft(r) ? r.left : undefined
  }

  it("suggests the machines within two edits of the hostname or name, nearest first, in the message too", () => {
    assert.deepStrictEqual(
      missed("web-3")?.candidates.map((c) => c.hostname),
      ["web-1", "web-2"]
    )
    assert.deepStrictEqual(
      missed("db-primery")?.candidates.map((c) => c.hostname),
      ["db-primary"]
    )
    assert.deepStrictEqual(
      missed("prod-dv")?.candidates.map((c) => c.hostname),
      ["db-primary"],
      "by its name"
    )
    assert.strictEqual(
      missed("db-primery")?.message,
      'machine "db-primery" not found in this workspace (did you mean db-primary?); list machines with "cmdop connect --list"'
    )
  })

  it("suggests nothing for a name far from every machine, or too short to be near anything", () => {
    assert.deepStrictEqual(missed("mailserver")?.candidates, [])
    assert.deepStrictEqual(missed("zz")?.candidates, [])
    assert.strictEqual(
      missed("mailserver")?.message,
      'machine "mailserver" not found in this workspace; list machines with "cmdop connect --list"'
    )
  })
})
