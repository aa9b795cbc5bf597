/**
 * `RelayStore` contract: several named API keys per workspace: creating one (shown once, the others stay live),
 * listing them (prefixes only), revoking one (it stops authenticating at once, the others and the share links
 * stay), rotation retiring them all, and failures (taken names, unknown keys, another workspace's keys) that
 * change nothing.
 */
import * as ApiKey from "@cmdop/domain/ApiKey"
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { DEFAULT_KEY_NAME, type KeyName, maskedKey } from "../records.js"
import { RelayStore } from "../service.js"
import { type ContractTest, failure, freshName, some } from "./support.js"

const name = (n: string) => n as KeyName

const namedKeysLiveSideBySide = Effect.gen(function* () {
  const store = yield* RelayStore
  const ws = freshName("keys")
  const { apiKey: first, workspace } = yield* store.createWorkspace(ws)
  const [initial] = yield* store.listKeys(ws)
  assert.strictEqual(initial!.name, DEFAULT_KEY_NAME)
  assert.strictEqual(initial!.prefix, ApiKey.prefixOf(first))
  const ci = yield* store.createKey(ws, name("ci"))
  assert.match(Redacted.value(ci.apiKey), ApiKey.ApiKeyPattern)
  assert.strictEqual(ci.key.name, "ci")
  assert.strictEqual(ci.key.workspaceId, workspace.id)
  assert.strictEqual(ci.key.generation, 1)
  assert.strictEqual(ci.key.prefix, ApiKey.prefixOf(ci.apiKey))
  assert.strictEqual(maskedKey(ci.key), `${ApiKey.prefixOf(ci.apiKey)}…`)
  const listed = yield* store.listKeys(ws)
  assert.deepStrictEqual(
    listed.map((k) => k.name),
    ["ci", "default"]
  )
  assert.deepStrictEqual(listed[0], ci.key)
  // A listing never holds the key: only its 12-character prefix.
  assert.notInclude(JSON.stringify(listed), Redacted.value(ci.apiKey).slice(12))
  assert.strictEqual(some(yield* store.authenticateKey(ci.apiKey)).keyId, ci.key.id)
  assert.strictEqual(some(yield* store.authenticateKey(first)).workspaceId, workspace.id)
  assert.strictEqual(yield* store.currentKeyGeneration(workspace.id), 1)
})

const revokingOneKeyLeavesTheOthers = Effect.gen(function* () {
  const store = yield* RelayStore
  const ws = freshName("revoke")
  const { apiKey: first, workspace } = yield* store.createWorkspace(ws)
  const ci = yield* store.createKey(ws, name("ci"))
  const laptop = yield* store.createKey(ws, name("laptop"))
  const revoked = yield* store.revokeKey(ws, ci.key.id)
  assert.deepStrictEqual(revoked, ci.key)
  assert.isTrue(Option.isNone(yield* store.authenticateKey(ci.apiKey)))
  assert.isTrue(Option.isSome(yield* store.authenticateKey(first)))
  assert.isTrue(Option.isSome(yield* store.authenticateKey(laptop.apiKey)))
  // Revoking one key is not a rotation: share links minted under the generation keep working.
  assert.strictEqual(yield* store.currentKeyGeneration(workspace.id), 1)
  // By name too; a revoked key's name is free again.
  yield* store.revokeKey(ws, "laptop")
  assert.isTrue(Option.isNone(yield* store.authenticateKey(laptop.apiKey)))
  const again = yield* store.createKey(ws, name("laptop"))
  assert.isTrue(Option.isSome(yield* store.authenticateKey(again.apiKey)))
  assert.deepStrictEqual(
    (yield* store.listKeys(ws)).map((k) => k.name),
    ["default", "laptop"]
  )
})

const failedKeyCallsChangeNothing = Effect.gen(function* () {
  const store = yield* RelayStore
  const ws = freshName("keyfail")
  const other = freshName("keyother")
  yield* store.createWorkspace(ws)
  const { apiKey: otherKey } = yield* store.createWorkspace(other)
  const ci = yield* store.createKey(ws, name("ci"))
  const before = yield* store.listKeys(ws)
  const taken = yield* failure(store.createKey(ws, name("ci")), "KeyNameTaken")
  assert.include(taken.message, '"ci"')
  yield* failure(store.revokeKey(ws, "key_unknown"), "KeyNotFound")
  // Another workspace's key, by id or name, is not found here and stays live.
  const [otherDefault] = yield* store.listKeys(other)
  yield* failure(store.revokeKey(ws, otherDefault!.id), "KeyNotFound")
  assert.isTrue(Option.isSome(yield* store.authenticateKey(otherKey)))
  yield* store.revokeKey(ws, "ci")
  yield* failure(store.revokeKey(ws, ci.key.id), "KeyNotFound")
  assert.deepStrictEqual(
    (yield* store.listKeys(ws)).map((k) => k.id),
    before.filter((k) => k.id !== ci.key.id).map((k) => k.id)
  )
  const missing = freshName("nokeys")
  yield* failure(store.createKey(missing, name("ci")), "WorkspaceNotFound")
  yield* failure(store.listKeys(missing), "WorkspaceNotFound")
  yield* failure(store.revokeKey(missing, "ci"), "WorkspaceNotFound")
})

const rotationRetiresEveryNamedKey = Effect.gen(function* () {
  const store = yield* RelayStore
  const ws = freshName("rotall")
  const { apiKey: first, workspace } = yield* store.createWorkspace(ws)
  const ci = yield* store.createKey(ws, name("ci"))
  const fresh = yield* store.rotateKey(ws, name("fresh"))
  assert.isTrue(Option.isNone(yield* store.authenticateKey(first)))
  assert.isTrue(Option.isNone(yield* store.authenticateKey(ci.apiKey)))
  assert.strictEqual(some(yield* store.authenticateKey(fresh)).generation, 2)
  assert.deepStrictEqual(
    (yield* store.listKeys(ws)).map((k) => [k.name, k.generation]),
    [["fresh", 2]]
  )
  const next = yield* store.createKey(ws, name("ci"))
  assert.strictEqual(next.key.generation, 2)
  yield* store.rotateKey(ws)
  assert.deepStrictEqual(
    (yield* store.listKeys(ws)).map((k) => k.name),
    ["default"]
  )
  assert.strictEqual(yield* store.currentKeyGeneration(workspace.id), 3)
})

const concurrentCreatesOfOneNameYieldOneKey = Effect.gen(function* () {
  const store = yield* RelayStore
  const ws = freshName("keyrace")
  yield* store.createWorkspace(ws)
  const results = yield* Effect.all(
    Array.from({ length: 5 }, () => Effect.either(store.createKey(ws, name("ci")))),
    { concurrency: "unbounded" }
  )
  assert.lengthOf(
    results.filter((r) => r._tag === "Right"),
    1
  )
  for (const r of results) if (r._tag === "Left") assert.strictEqual(r.left.reason, "KeyNameTaken")
  assert.deepStrictEqual(
    (yield* store.listKeys(ws)).map((k) => k.name),
    ["ci", "default"]
  )
})

export const tests: ReadonlyArray<ContractTest> = [
  ["named API keys live side by side, each shown once and listed by prefix", namedKeysLiveSideBySide],
  ["revoking one key ends it alone; its name is free again", revokingOneKeyLeavesTheOthers],
  [
    "failed key calls (taken name, unknown or foreign key, unknown workspace) change nothing",
    failedKeyCallsChangeNothing
  ],
  ["rotation retires every named key and issues one", rotationRetiresEveryNamedKey],
  ["concurrent creates of one key name yield one key", concurrentCreatesOfOneNameYieldOneKey]
]
