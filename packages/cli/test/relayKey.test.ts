/**
 * `cmdop relay key list|create|revoke` on the relay host, in both worlds (`World.ts`): named keys live side by
 * side, each printed once and masked after; revoking one refuses its very next call while the relay runs (the live
 * world's relay is another process on the same SQLite file), and leaves the others working; bad names and unknown
 * keys are one clear error that changes nothing.
 */
import * as RelayAccounts from "@cmdop/relay/RelayAccounts"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Layers from "../src/Layers.js"
import { RelayHost } from "../src/RelayHost.js"
import { runMain } from "./support.js"
import { worlds } from "./World.js"

for (const [worldName, makeWorld] of worlds)
  describe(`relay key list|create|revoke, ${worldName}`, () => {
    it.scopedLive(
      "several named keys, shown once, masked after; revoking one refuses its next call, the others go on",
      () =>
        Effect.gen(function* () {
          const w = yield* makeWorld
          const first = yield* w.create("acme")
          const created = yield* w.admin(["key", "create", "acme", "ci", "--json"])
          assert.strictEqual(created.code, 0, created.stderr)
          const ci = JSON.parse(created.stdout) as { api_key: string; id: string; name: string }
          assert.strictEqual(ci.name, "ci")
          assert.match(ci.api_key, /^ck_live_/)
          assert.strictEqual((yield* w.cli(ci.api_key, ["--list"])).code, 0)
          const human = yield* w.admin(["key", "create", "acme", "laptop"])
          assert.strictEqual(human.code, 0, human.stderr)
          const laptop = /(ck_live_\S+)/.exec(human.stdout)![1]!
          assert.include(human.stderr, "shown once")

          const listed = yield* w.admin(["key", "list", "acme", "--json"])
          assert.strictEqual(listed.code, 0, listed.stderr)
          const keys = JSON.parse(listed.stdout).keys as Array<{ id: string; name: string; key: string }>
          assert.deepStrictEqual(
            keys.map((k) => k.name),
            ["ci", "default", "laptop"]
          )
          assert.strictEqual(keys[0]!.key, `${ci.api_key.slice(0, 12)}…`)
          const table = yield* w.admin(["key", "list", "acme"])
          assert.match(table.stdout, /NAME\s+KEY\s+ID\s+CREATED/)
          for (const secret of [first, ci.api_key, laptop]) {
            assert.notInclude(listed.stdout, secret.slice(12))
            assert.notInclude(table.stdout, secret.slice(12))
          }

          const revoked = yield* w.admin(["key", "revoke", "acme", "ci", "--json"])
          assert.strictEqual(revoked.code, 0, revoked.stderr)
          assert.deepStrictEqual(JSON.parse(revoked.stdout).revoked, { id: ci.id, name: "ci" })
          // The very next call with it is refused; the other keys go on.
          const refused = yield* w.cli(ci.api_key, ["--list"])
          assert.strictEqual(refused.code, 255)
          assert.include(refused.stderr, "does not accept key")
          assert.strictEqual((yield* w.cli(first, ["--list"])).code, 0)
          assert.strictEqual((yield* w.cli(laptop, ["--list"])).code, 0)
          const byId = yield* w.admin(["key", "revoke", "acme", keys[2]!.id])
          assert.strictEqual(byId.code, 0, byId.stderr)
          assert.include(byId.stdout, 'revoked api key "laptop"')
          assert.strictEqual((yield* w.cli(laptop, ["--list"])).code, 255)
        }),
      120_000
    )

    it.scopedLive(
      "bad names, taken names, unknown keys and workspaces: one clear error, nothing changed",
      () =>
        Effect.gen(function* () {
          const w = yield* makeWorld
          const first = yield* w.create("acme")
          const bad = yield* w.admin(["key", "create", "acme", "no spaces allowed"])
          assert.strictEqual(bad.code, 2)
          assert.include(bad.stderr, 'invalid key name "no spaces allowed"')
          const taken = yield* w.admin(["key", "create", "acme", "default"])
          assert.notStrictEqual(taken.code, 0)
          assert.include(taken.stderr, 'already has a live API key named "default"')
          const unknown = yield* w.admin(["key", "revoke", "acme", "nope"])
          assert.notStrictEqual(unknown.code, 0)
          assert.include(unknown.stderr, 'no live API key "nope"')
          const missing = yield* w.admin(["key", "list", "globex"])
          assert.notStrictEqual(missing.code, 0)
          assert.include(missing.stderr, 'workspace "globex" does not exist')
          const listed = JSON.parse((yield* w.admin(["key", "list", "acme", "--json"])).stdout).keys as Array<unknown>
          assert.lengthOf(listed, 1)
          assert.strictEqual((yield* w.cli(first, ["--list"])).code, 0)
        }),
      60_000
    )
  })

describe("relay key create|revoke|rotate on the relay host's audit trail", () => {
  it.scopedLive("each change is recorded with the relay host as the actor (in-memory world)", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-memory-keys-")
      const context = yield* Layer.build(Layers.memory({ home }))
      const run = (args: ReadonlyArray<string>) =>
        runMain(["relay", ...args], { env: {}, services: Layer.succeedContext(context) })
      assert.strictEqual((yield* run(["workspace", "create", "acme"])).code, 0)
      const created = yield* run(["key", "create", "acme", "ci", "--json"])
      assert.strictEqual(created.code, 0, created.stderr)
      const key = JSON.parse(created.stdout).api_key as string
      assert.strictEqual((yield* run(["key", "revoke", "acme", "ci"])).code, 0)
      const rotated = yield* run(["key", "rotate", "acme", "--json"])
      assert.strictEqual(rotated.code, 0, rotated.stderr)
      const fresh = JSON.parse(rotated.stdout).api_key as string
      const host = Context.get(context, RelayHost)
      const trail = yield* Effect.flatMap(RelayAccounts.AccountStore, (store) => store.listAudit({})).pipe(
        Effect.provide(host.accounts({ dataDir: "/nonexistent" }))
      )
      assert.deepStrictEqual(
        trail.map((e) => [e.actor, e.action]),
        [
          ["relay-host", "key.created"],
          ["relay-host", "key.revoked"],
          ["relay-host", "key.rotated"]
        ]
      )
      assert.include(trail[0]!.detail, 'API key "ci"')
      const workspace = trail[0]!.workspaceId
      assert.strictEqual(trail[2]!.workspaceId, workspace)
      assert.include(trail[2]!.detail, "acme")
      assert.isFalse(trail.some((e) => e.detail.includes(key) || e.detail.includes(fresh)))
    })
  )
})
