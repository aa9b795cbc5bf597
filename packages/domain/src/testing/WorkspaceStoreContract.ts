/**
 * The contract every `WorkspaceStore` layer passes (the in-memory twin and the durable file store alike). Call it
 * once per implementation with a factory that builds a fresh store around some initial file text.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Workspace from "../Workspace.js"
import { WorkspaceError } from "../WorkspaceError.js"
import type { WorkspaceStore } from "../WorkspaceStore.js"
import * as codec from "../internal/workspaceCodec.js"
import * as Arbitraries from "./Arbitraries.js"

export interface StoreFixture {
  readonly store: WorkspaceStore["Type"]
  /** The raw bytes behind the store (`undefined`: no file). */
  readonly readRaw: Effect.Effect<string | undefined>
  /** Changes the raw bytes behind the store's back (another process writing). */
  readonly writeRaw: (text: string) => Effect.Effect<void>
  /** A second, independent instance over the same bytes (another process). */
  readonly reopen: Effect.Effect<WorkspaceStore["Type"], never, Scope.Scope>
}

export type StoreFactory = (initialText: string | undefined) => Effect.Effect<StoreFixture, never, Scope.Scope>

const name = (s: string) => Workspace.WorkspaceName.make(s)
const key = (s: string) => Redacted.make(`ck_test_${s.padEnd(32, "0")}`)

const addOne = (store: WorkspaceStore["Type"], n: string, k?: string) =>
  store.update((file) =>
    Effect.map(
      Workspace.add(file, { name: name(n), ...(k ? { api_key: key(k) } : {}) }),
      (next) => [undefined, next] as const
    )
  )

export const workspaceStoreContract = (label: string, factory: StoreFactory) =>
  describe(`WorkspaceStore contract: ${label}`, () => {
    it.scopedLive("a missing file is the empty store", () =>
      Effect.gen(function* () {
        const { readRaw, store } = yield* factory(undefined)
        assert.deepStrictEqual(yield* store.load, Workspace.empty)
        assert.strictEqual(yield* readRaw, undefined)
      })
    )

    it.scopedLive("an update writes the exact file shape and the first workspace becomes active", () =>
      Effect.gen(function* () {
        const { readRaw, store } = yield* factory(undefined)
        yield* addOne(store, "production", "abc")
        yield* addOne(store, "staging")
        const raw = yield* readRaw
        assert.deepStrictEqual(JSON.parse(raw!), {
          active: "production",
          workspaces: [{ name: "production", api_key: "ck_test_abc" + "0".repeat(29) }, { name: "staging" }]
        })
        const loaded = yield* store.load
        assert.strictEqual(Workspace.activeName(loaded), "production")
        assert.deepStrictEqual(Workspace.names(loaded), ["production", "staging"])
      })
    )

    it.scopedLive("a failed update changes nothing", () =>
      Effect.gen(function* () {
        const { readRaw, store } = yield* factory(undefined)
        yield* addOne(store, "a")
        const before = yield* readRaw
        const result = yield* Effect.either(addOne(store, "a"))
        assert.isTrue(Either.isLeft(result))
        if (Either.isLeft(result)) assert.instanceOf(result.left, WorkspaceError)
        const useMissing = yield* Effect.either(
          store.update((file) => Effect.map(Workspace.use(file, "nope"), (next) => [undefined, next] as const))
        )
        assert.isTrue(Either.isLeft(useMissing))
        assert.strictEqual(yield* readRaw, before)
      })
    )

    it.scopedLive("a corrupt file is a typed error naming the file and line, and is left byte-for-byte unchanged", () =>
      Effect.gen(function* () {
        const corrupt = '{\n  "active": "a",\n  "workspaces": [ { "name": "a", }\n}\n'
        const { readRaw, store } = yield* factory(corrupt)
        const loaded = yield* Effect.flip(store.load)
        assert.strictEqual(loaded._tag, "WorkspaceStoreError")
        assert.strictEqual(loaded.reason, "Corrupt")
        assert.include(loaded.message, store.path)
        assert.include(loaded.message, "not valid JSON (line 3)")
        assert.include(loaded.message, "left unchanged")
        const updated = yield* Effect.flip(addOne(store, "b"))
        assert.strictEqual(updated._tag, "WorkspaceStoreError")
        assert.strictEqual(yield* readRaw, corrupt)
      })
    )

    it.scopedLive("a file of the wrong shape is rejected and left unchanged", () =>
      Effect.gen(function* () {
        const wrong = '{"workspaces":[{"name":"bad name!"}]}'
        const { readRaw, store } = yield* factory(wrong)
        const error = yield* Effect.flip(store.load)
        assert.strictEqual(error._tag, "WorkspaceStoreError")
        assert.include(error.message, "workspaces.0.name")
        assert.strictEqual(yield* readRaw, wrong)
      })
    )

    it.scopedLive("unknown fields survive a rewrite, at the top and in workspaces", () =>
      Effect.gen(function* () {
        const text = JSON.stringify({
          active: "a",
          future_flag: { nested: [1, 2] },
          workspaces: [{ name: "a", api_key: "ck_test_" + "x".repeat(32), color: "blue" }]
        })
        const { readRaw, store } = yield* factory(text)
        yield* addOne(store, "b")
        const raw = JSON.parse((yield* readRaw)!)
        assert.deepStrictEqual(raw.future_flag, { nested: [1, 2] })
        assert.strictEqual(raw.workspaces[0].color, "blue")
        assert.strictEqual(raw.workspaces[1].name, "b")
      })
    )

    it.scopedLive("load is lazy and cached: one view per instance until it updates", () =>
      Effect.gen(function* () {
        const { reopen, store, writeRaw } = yield* factory(undefined)
        yield* addOne(store, "first")
        yield* writeRaw(JSON.stringify({ workspaces: [{ name: "other" }] }))
        // This instance already loaded (through its update): it keeps its view.
        assert.deepStrictEqual(Workspace.names(yield* store.load), ["first"])
        // A new instance (another process) loads on first access and sees the new bytes.
        const second = yield* reopen
        assert.deepStrictEqual(Workspace.names(yield* second.load), ["other"])
        // An update always starts from the freshest bytes, so nothing written elsewhere is lost.
        yield* addOne(store, "third")
        assert.deepStrictEqual(Workspace.names(yield* store.load), ["other", "third"])
      })
    )

    it.scopedLive("concurrent writers through separate instances all land", () =>
      Effect.gen(function* () {
        const { reopen, store } = yield* factory(undefined)
        assert.strictEqual((yield* store.load).workspaces.length, 0)
        const instances = yield* Effect.all(Array.from({ length: 10 }, () => reopen))
        yield* Effect.forEach(
          instances.flatMap((s, i) => [addOne(s, `w${i}-a`), addOne(s, `w${i}-b`)]),
          (eff) => eff,
          { concurrency: "unbounded", discard: true }
        )
        const fresh = yield* reopen
        assert.strictEqual((yield* fresh.load).workspaces.length, 20)
        // The instance that loaded before the writes keeps its view until it writes itself.
        assert.strictEqual((yield* store.load).workspaces.length, 0)
      })
    )

    it.scopedLive("any store file round-trips through the backing bytes", () =>
      Effect.gen(function* () {
        const { reopen, store } = yield* factory(undefined)
        const samples = FastCheck.sample(Arbitraries.workspaceFile, 40)
        for (const sample of samples) {
          yield* store.update(() => Effect.succeed([undefined, sample] as const))
          const other = yield* reopen
          const loaded = yield* other.load
          assert.strictEqual(codec.encode(loaded), codec.encode(sample))
        }
      })
    )
  })
