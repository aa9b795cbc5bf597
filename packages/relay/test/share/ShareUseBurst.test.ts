/**
 * A burst of guest uses of share links (each a `recordUse`, as every exec or attach through a link makes) on the
 * durable stores, PostgreSQL with a pool of two connections that gives up on an acquire after a second: every use is
 * counted on its link with its `used` event; none is lost to the pool.
 */
import * as RelayStore from "@cmdop/relay/RelayStore"
import { freshPgSchema } from "@cmdop/test-helpers/Postgres"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { fixtureOn, freshStore } from "./fixtures.js"

const BURST = 1200
const LINKS = 3

/** A fresh PostgreSQL store whose pool has two connections and waits at most a second for one. */
const smallPoolPg: Effect.Effect<RelayStore.RelayStore["Type"], never, Scope.Scope> = Effect.gen(function* () {
  const { url } = yield* Effect.orDie(freshPgSchema("cmdop_share_burst"))
  const layer = RelayStore.layerSql.pipe(
    Layer.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 2, connectTimeout: "1 second" }))
  )
  return Context.get(yield* Layer.build(layer).pipe(Effect.orDie), RelayStore.RelayStore)
})

const loseNone = (store: RelayStore.RelayStore["Type"]) =>
  Effect.gen(function* () {
    const fx = yield* fixtureOn(store)
    const ws = yield* fx.workspace()
    const links = yield* Effect.forEach(Array.from({ length: LINKS }), () =>
      fx.shares.mint({
        creator: { workspaceId: ws.workspaceId, principal: "ck_live_abcd", kind: "key" },
        machine: ws.machines[0]!,
        ttlSeconds: 3600,
        publicUrl: "http://relay.test"
      })
    )
    yield* Effect.forEach(
      Array.from({ length: BURST }, (_, i) => i),
      (i) => fx.shares.recordUse(links[i % LINKS]!.link.id, `exec n${i}`),
      { concurrency: "unbounded", discard: true }
    )
    for (const [l, minted] of links.entries()) {
      const link = yield* fx.shares.get(ws.workspaceId, minted.link.id)
      const used = link.events.filter((e) => e.kind === "used").map((e) => e.detail)
      const expected = Array.from({ length: BURST }, (_, i) => i)
        .filter((i) => i % LINKS === l)
        .map((i) => `exec n${i}`)
      assert.strictEqual(link.useCount, BURST / LINKS)
      assert.sameMembers(used, expected)
    }
  })

describe("a burst of share-link uses", () => {
  it.scopedLive("on SQLite: every use is recorded", () => Effect.flatMap(freshStore("sqlite"), loseNone), 60_000)

  it.scopedLive(
    "on PostgreSQL with a pool of two: every use is recorded",
    () => Effect.flatMap(smallPoolPg, loseNone),
    60_000
  )
})
