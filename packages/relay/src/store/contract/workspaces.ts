/**
 * `RelayStore` contract: Workspaces and their API keys: creation, rotation, authentication, and failures that change nothing.
 */
import * as ApiKey from "@cmdop/domain/ApiKey"
import { WorkspaceId } from "@cmdop/domain/Machine"
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { RelayStore } from "../service.js"
import { type ContractTest, failure, freshName, registration, some, suffix } from "./support.js"

const createworkspaceReturnsAKeyThatAuthenticates = Effect.gen(function* () {
  const store = yield* RelayStore
  const name = freshName("acme")
  const { apiKey, workspace } = yield* store.createWorkspace(name)
  assert.strictEqual(workspace.name, name)
  assert.isTrue(workspace.id.startsWith("ws_"))
  assert.strictEqual(workspace.keyGeneration, 1)
  assert.match(Redacted.value(apiKey), ApiKey.ApiKeyPattern)
  assert.notInclude(String(apiKey), Redacted.value(apiKey))

  const identity = some(yield* store.authenticateKey(apiKey))
  assert.strictEqual(identity.workspaceId, workspace.id)
  assert.strictEqual(identity.workspaceName, name)
  assert.strictEqual(identity.generation, 1)
  assert.isTrue(identity.keyId.length > 0)

  assert.deepStrictEqual(yield* store.getWorkspace(name), workspace)
  assert.deepStrictEqual(
    (yield* store.listWorkspaces).filter((w) => w.name === name),
    [workspace]
  )
  assert.strictEqual(yield* store.currentKeyGeneration(workspace.id), 1)
  assert.isTrue(Option.isNone(yield* store.authenticateKey(ApiKey.generate())))
  assert.isTrue(Option.isNone(yield* store.authenticateKey(Redacted.make(""))))
})

const aDuplicateWorkspaceNameFailsAnd = Effect.gen(function* () {
  const store = yield* RelayStore
  const name = freshName("dup")
  const first = yield* store.createWorkspace(name)
  const before = yield* store.listWorkspaces
  const error = yield* failure(store.createWorkspace(name), "WorkspaceExists")
  assert.include(error.message, name)
  assert.deepStrictEqual(yield* store.listWorkspaces, before)
  const identity = some(yield* store.authenticateKey(first.apiKey))
  assert.strictEqual(identity.workspaceId, first.workspace.id)
  assert.strictEqual(yield* store.currentKeyGeneration(first.workspace.id), 1)
})

const concurrentCreatesAndRotationsSerialise = Effect.gen(function* () {
  const store = yield* RelayStore
  const name = freshName("race")
  const results = yield* Effect.all(
    Array.from({ length: 6 }, () => Effect.either(store.createWorkspace(name))),
    { concurrency: "unbounded" }
  )
  const created = results.filter((r) => r._tag === "Right")
  assert.lengthOf(created, 1)
  for (const r of results) {
    if (r._tag === "Left") assert.strictEqual(r.left.reason, "WorkspaceExists")
  }

  const keys = yield* Effect.all(
    Array.from({ length: 5 }, () => store.rotateKey(name)),
    { concurrency: "unbounded" }
  )
  const workspace = yield* store.getWorkspace(name)
  assert.strictEqual(workspace.keyGeneration, 6)
  const live = yield* Effect.forEach(keys, (key) => store.authenticateKey(key))
  assert.lengthOf(live.filter(Option.isSome), 1)
  assert.strictEqual(some(live.find(Option.isSome) ?? Option.none()).generation, 6)
})

const unknownWorkspacesAreTypedErrors = Effect.gen(function* () {
  const store = yield* RelayStore
  const name = freshName("missing")
  const error = yield* failure(store.getWorkspace(name), "WorkspaceNotFound")
  assert.include(error.message, "cmdop relay workspace create")
  yield* failure(store.rotateKey(name), "WorkspaceNotFound")
  yield* failure(store.currentKeyGeneration(WorkspaceId.make(`ws_${suffix()}`)), "WorkspaceNotFound")
  yield* failure(store.registerMachine(registration(WorkspaceId.make(`ws_${suffix()}`))), "WorkspaceNotFound")
  assert.isFalse((yield* store.listWorkspaces).some((w) => w.name === name))
})

const rotatekeyRetiresTheOldKeyAnd = Effect.gen(function* () {
  const store = yield* RelayStore
  const name = freshName("rot")
  const other = yield* store.createWorkspace(freshName("bystander"))
  const { apiKey: first, workspace } = yield* store.createWorkspace(name)

  const second = yield* store.rotateKey(name)
  assert.notStrictEqual(Redacted.value(second), Redacted.value(first))
  assert.isTrue(Option.isNone(yield* store.authenticateKey(first)))
  const identity = some(yield* store.authenticateKey(second))
  assert.strictEqual(identity.workspaceId, workspace.id)
  assert.strictEqual(identity.generation, 2)
  assert.strictEqual(yield* store.currentKeyGeneration(workspace.id), 2)

  const third = yield* store.rotateKey(name)
  assert.isTrue(Option.isNone(yield* store.authenticateKey(first)))
  assert.isTrue(Option.isNone(yield* store.authenticateKey(second)))
  assert.strictEqual(some(yield* store.authenticateKey(third)).generation, 3)
  assert.strictEqual((yield* store.getWorkspace(name)).keyGeneration, 3)

  // Another workspace's key is untouched.
  assert.strictEqual(some(yield* store.authenticateKey(other.apiKey)).workspaceId, other.workspace.id)
  assert.strictEqual(yield* store.currentKeyGeneration(other.workspace.id), 1)
})

/** The tests of this part, as (title, test) pairs. */
export const tests: ReadonlyArray<ContractTest> = [
  [
    "createWorkspace returns a key that authenticates, and stores only its hash",
    createworkspaceReturnsAKeyThatAuthenticates
  ],
  ["a duplicate workspace name fails and changes nothing", aDuplicateWorkspaceNameFailsAnd],
  ["concurrent creates and rotations serialise", concurrentCreatesAndRotationsSerialise],
  ["unknown workspaces are typed errors", unknownWorkspacesAreTypedErrors],
  ["rotateKey retires the old key and raises the generation", rotatekeyRetiresTheOldKeyAnd]
]
