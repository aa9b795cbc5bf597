/**
 * The key-verdict cache on a real SQLite file, wired as `relay serve` wires it (the WAL-index probe): an accepted
 * key is checked in the store once while nothing changes, and a rotation or revocation made over another connection
 * (as `cmdop relay key …` does from another process) or by the relay itself is refused on the very next call.
 */
import { AccessError } from "@cmdop/domain/AccessError"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import type { Caller } from "@cmdop/relay/Authenticator"
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as KeyVerdicts from "../../src/internal/keyVerdicts.js"

const SERVER = "relay.test:1"
const dirs: Array<string> = []
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

const openStore = (file: string) =>
  Effect.map(Layer.build(RelayStore.layerSqlite({ path: file })), (ctx) => Context.get(ctx, RelayStore.RelayStore))

const setup = Effect.gen(function* () {
  const dir = mkdtempSync(join(tmpdir(), "cmdop-key-verdicts-"))
  dirs.push(dir)
  const file = join(dir, "relay.db")
  const relayStore = yield* openStore(file)
  const checks = { count: 0 }
  const counted: RelayStore.RelayStore["Type"] = {
    ...relayStore,
    authenticateKey: (key) => Effect.tap(relayStore.authenticateKey(key), () => Effect.sync(() => checks.count++))
  }
  const context = yield* Layer.build(
    RelayCore.layer({ server: SERVER, storeVersion: KeyVerdicts.walIndexProbe(file) }).pipe(
      Layer.provideMerge(ShareServiceLive.layer),
      Layer.provide(Layer.succeed(RelayStore.RelayStore, counted))
    )
  )
  const core = Context.get(context, RelayCore.RelayCore)
  // The relay host's CLI: a connection of its own to the same file.
  const host = yield* openStore(file)
  const created = yield* relayStore.createWorkspace(WorkspaceName.make("acme"))
  const accepted = (key: Redacted.Redacted<string>) => Effect.map(Effect.either(core.authenticate(key)), Either.isRight)
  return { core, host, relayStore, checks, created, accepted }
})

describe("key verdicts", () => {
  it.scoped("an accepted key is checked in the store once while nothing changes", () =>
    Effect.gen(function* () {
      const { accepted, checks, created } = yield* setup
      for (let i = 0; i < 5; i++) assert.isTrue(yield* accepted(created.apiKey))
      assert.strictEqual(checks.count, 1)
      assert.isFalse(yield* accepted(Redacted.make("ck_unknown_key_0000000000000000")))
      assert.isFalse(yield* accepted(Redacted.make("ck_unknown_key_0000000000000000")))
      assert.strictEqual(checks.count, 3, "refusals are never cached")
    })
  )

  it.scoped("a key rotated from another connection is refused on the very next call", () =>
    Effect.gen(function* () {
      const { accepted, created, host } = yield* setup
      assert.isTrue(yield* accepted(created.apiKey))
      assert.isTrue(yield* accepted(created.apiKey))
      const next = yield* host.rotateKey("acme")
      assert.isFalse(yield* accepted(created.apiKey))
      assert.isTrue(yield* accepted(next))
    })
  )

  it.scoped("a key revoked by the relay's own store is refused on the very next call", () =>
    Effect.gen(function* () {
      const { accepted, relayStore } = yield* setup
      const ci = yield* relayStore.createKey("acme", "ci" as never)
      assert.isTrue(yield* accepted(ci.apiKey))
      assert.isTrue(yield* accepted(ci.apiKey))
      yield* relayStore.revokeKey("acme", ci.key.id)
      assert.isFalse(yield* accepted(ci.apiKey))
    })
  )

  it.scoped("the probe changes with every commit, from any connection", () =>
    Effect.gen(function* () {
      const { host, relayStore } = yield* setup
      const dir = dirs[dirs.length - 1]!
      const probe = KeyVerdicts.walIndexProbe(join(dir, "relay.db"))
      const seen = new Set<string | undefined>([probe()])
      yield* host.createWorkspace(WorkspaceName.make("beta"))
      seen.add(probe())
      yield* relayStore.createWorkspace(WorkspaceName.make("gamma"))
      seen.add(probe())
      assert.strictEqual(seen.size, 3)
      assert.isFalse(seen.has(undefined))
      assert.isUndefined(KeyVerdicts.walIndexProbe(join(dir, "absent.db"))())
    })
  )

  describe("checks that miss at once", () => {
    /** An authenticate that counts its calls and answers only once `open` is done. */
    const slow = Effect.gen(function* () {
      const open = yield* Deferred.make<void>()
      const calls = { count: 0 }
      const caller = { kind: "key" } as Caller
      const authenticate: KeyVerdicts.Authenticate = (credential) =>
        Effect.suspend(() => {
          calls.count++
          return Effect.as(Deferred.await(open), caller)
        }).pipe(
          Effect.flatMap((c) =>
            Redacted.value(credential!).includes("bad")
              ? Effect.fail(new AccessError({ reason: "Unauthenticated", detail: "unknown key" }))
              : Effect.succeed(c)
          )
        )
      return { open, calls, caller, authenticate }
    })

    it.scoped("share one store check (the same version), refusals included", () =>
      Effect.gen(function* () {
        const { authenticate, calls, caller, open } = yield* slow
        const version = { v: "1" }
        const check = KeyVerdicts.cached(authenticate, () => version.v)
        const key = Redacted.make("ck_live_fleet")
        const fleet = yield* Effect.forkScoped(
          Effect.all(
            Array.from({ length: 20 }, () => check(key)),
            { concurrency: "unbounded" }
          )
        )
        const bad = yield* Effect.forkScoped(
          Effect.all(
            Array.from({ length: 5 }, () => Effect.either(check(Redacted.make("ck_bad")))),
            { concurrency: "unbounded" }
          )
        )
        // Every caller is waiting on its check before the store answers.
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
        yield* Deferred.succeed(open, undefined)
        const callers = yield* Fiber.join(fleet)
        assert.isTrue(callers.every((c) => c === caller))
        assert.isTrue((yield* Fiber.join(bad)).every(Either.isLeft))
        assert.strictEqual(calls.count, 2, "one check per key")
        // A change of version while a check is in flight starts a check of its own.
        version.v = "2"
        assert.strictEqual(yield* check(key), caller)
        assert.strictEqual(calls.count, 3)
      })
    )

    it.scoped("a caller that goes away does not take the check from the others", () =>
      Effect.gen(function* () {
        const { authenticate, calls, caller, open } = yield* slow
        const check = KeyVerdicts.cached(authenticate, () => "1")
        const key = Redacted.make("ck_live_fleet")
        const first = yield* Effect.forkScoped(check(key))
        yield* Effect.yieldNow()
        const second = yield* Effect.forkScoped(check(key))
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(first)
        yield* Deferred.succeed(open, undefined)
        assert.strictEqual(yield* Fiber.join(second), caller)
        assert.strictEqual(calls.count, 1)
      })
    )
  })
})
