import * as MachineRoutes from "@cmdop/relay/cluster/MachineRoutes"
import * as MachineRoutesPg from "@cmdop/relay/cluster/MachineRoutesPg"
import * as ClusterMigrations from "@cmdop/relay/cluster/clusterMigrations"
import * as RelayStore from "@cmdop/relay/RelayStore"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { machineRoutesContract } from "./MachineRoutesContract.js"
import { freshPgSchema } from "@cmdop/test-helpers/Postgres"

const scope = Effect.runSync(Scope.make())
let url = ""
beforeAll(async () => {
  url = (await Effect.runPromise(Scope.extend(freshPgSchema("cmdop_cluster"), scope))).url
})
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

machineRoutesContract("memory", {
  layer: (leaseMs) => MachineRoutes.layerMemory(leaseMs),
  elapse: (ms) => TestClock.adjust(ms),
  live: false
})

machineRoutesContract("postgresql", {
  layer: (leaseMs) => MachineRoutesPg.layerPostgres({ url: Redacted.make(url), leaseMs }),
  elapse: (ms) => Effect.sleep(ms),
  live: true
})

describe("MachineRoutes on PostgreSQL", () => {
  it.live("keeps its own migrations table beside the relay store's, and migrating again is a no-op", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* RelayStore.migrate
      yield* Layer.build(MachineRoutesPg.layerSql())
      assert.deepStrictEqual(yield* ClusterMigrations.migrate, [])
      const tables = (yield* sql<{ readonly name: string }>`SELECT table_name AS name
        FROM information_schema.tables WHERE table_schema = current_schema()`).map((r) => r.name)
      assert.includeMembers(tables, [
        "cluster_nodes",
        "cluster_routes",
        ClusterMigrations.migrationsTable,
        RelayStore.migrationsTable
      ])
      const applied = yield* sql<{ readonly name: string }>`SELECT name FROM ${sql(ClusterMigrations.migrationsTable)}`
      assert.deepStrictEqual(
        applied.map((r) => r.name),
        ["init", "instances", "client_addresses", "secret_fingerprints"]
      )
    }).pipe(Effect.scoped, Effect.provide(Layer.suspend(() => PgClient.layer({ url: Redacted.make(url) }))))
  )

  it.live("an unreachable server is one clear error, without the URL's password", () =>
    Effect.gen(function* () {
      const error = yield* Layer.build(
        MachineRoutesPg.layerPostgres({ url: Redacted.make("postgres://cmdop:hunter2@127.0.0.1:1/none") })
      ).pipe(Effect.scoped, Effect.flip)
      assert.strictEqual(error._tag, "MachineRoutesError")
      assert.include(error.message + error.operation, "connecting to PostgreSQL")
      assert.notInclude(error.detail, "hunter2")
    })
  )
})
