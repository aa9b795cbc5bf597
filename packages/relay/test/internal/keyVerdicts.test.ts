/**
 * The key-verdict cache on a real SQLite file, wired as `relay serve` wires it (the WAL-index probe): an accepted
 * key is checked in the store once while nothing changes, and a rotation or revocation made over another connection
 * (as `cmdop relay key …` does from another process) or by the relay itself is refused on the very next call.
 */
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
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
})
