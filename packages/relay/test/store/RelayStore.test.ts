import { WorkspaceId } from "@cmdop/domain/Machine"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayStore from "@cmdop/relay/RelayStore"
import { relayStoreContract } from "@cmdop/relay/store/RelayStoreContract"
import * as Postgres from "@cmdop/test-helpers/Postgres"
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { LibsqlClient } from "@effect/sql-libsql"
import { PgClient } from "@effect/sql-pg"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { randomBytes, randomUUID } from "node:crypto"
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"

const tempDirs: Array<string> = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "cmdop-relay-store-"))
  tempDirs.push(dir)
  return dir
}
afterAll(() => tempDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })))

const freshPgSchema = Postgres.freshPgSchema("cmdop_test")

const sqlitePath = join(tempDir(), "nested", "data", "relay.db")

relayStoreContract("memory", RelayStore.layerMemory)
relayStoreContract("sqlite", RelayStore.layerSqlite({ path: sqlitePath }))

const registerOne = Effect.gen(function* () {
  const store = yield* RelayStore.RelayStore
  const created = yield* store.createWorkspace(WorkspaceName.make(`durable-${randomBytes(4).toString("hex")}`))
  const machine = yield* store.registerMachine({
    id: RelayStore.MachineRegistration.fields.id.make(randomUUID()),
    workspaceId: created.workspace.id,
    hostname: "durable-host",
    name: "durable",
    os: "linux",
    agentVersion: "0.1.0",
    secretHash: randomBytes(32).toString("hex")
  })
  yield* store.markOnline(machine.id, 42)
  return { ...created, machine }
})

/** The tables the migrations create, as the catalog of each dialect lists them. */
const tableNames = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.onDialectOrElse({
    pg: () =>
      sql<{ readonly name: string }>`SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = current_schema()`,
    orElse: () => sql<{ readonly name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`
  })
  return rows.map((r) => r.name)
})

/** The indexes on `share_links`, as the catalog of each dialect lists them. */
const indexNames = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.onDialectOrElse({
    pg: () =>
      sql<{ readonly name: string }>`SELECT indexname AS name FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename = 'share_links'`,
    orElse: () =>
      sql<{ readonly name: string }>`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'share_links'`
  })
  return rows.map((r) => r.name)
})

const expectedTables = ["workspaces", "api_keys", "machines", "signing_keys", "share_links", "share_events"]

/** Migrating twice applies the schema once; building the store again on the same database works. */
const migrationsAreIdempotent = Effect.gen(function* () {
  const first = yield* RelayStore.migrate
  assert.deepStrictEqual(first, [
    [1, "init"],
    [2, "share_links"],
    [3, "share_link_scope"],
    [4, "api_keys"],
    [5, "share_list_index"],
    [6, "machine_name_key"],
    [7, "machine_gate"]
  ])
  const second = yield* RelayStore.migrate
  assert.deepStrictEqual(second, [])
  assert.includeMembers(yield* tableNames, [...expectedTables, RelayStore.migrationsTable])
  // Share listings are keyset-paged from these indexes (0005); the one they replace is gone.
  const indexes = yield* indexNames
  assert.includeMembers(indexes, ["share_links_listing", "share_links_machine_listing"])
  assert.notInclude(indexes, "share_links_workspace")

  const written = yield* Effect.provide(registerOne, RelayStore.layerSql)
  // A second store on the same database runs the migrator again (no-op) and sees the data.
  const store = yield* Effect.provide(RelayStore.RelayStore, RelayStore.layerSql)
  assert.strictEqual((yield* store.getWorkspace(written.workspace.name)).id, written.workspace.id)
  assert.deepStrictEqual(yield* RelayStore.migrate, [])
})

/**
 * Machines registered before 0006 get their `name_key` from JavaScript's lower-casing (SQLite's `lower` leaves
 * "Ä" as it is), so an old machine's name still clashes in any case afterwards.
 */
const nameKeysAreBackfilled = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const before = Object.fromEntries(Object.entries(RelayStore.migrations).filter(([id]) => id < "0006"))
  yield* Migrator.make({})({ loader: Migrator.fromRecord(before), table: RelayStore.migrationsTable })
  yield* sql`INSERT INTO workspaces (id, name, created_at, key_generation) VALUES ('ws_old', 'old', 1, 1)`
  const machineId = randomUUID()
  yield* sql`INSERT INTO machines (id, workspace_id, hostname, hostname_key, name, os, agent_version, secret_hash,
    registered_at, updated_at) VALUES (${machineId}, 'ws_old', 'Old-Box', 'old-box', 'ÄRGER-Box', 'linux', '0.1.0',
    'hash', 1, 1)`
  // The later migrations run too (0007 adds a column the old rows have as NULL: their agents said nothing yet).
  assert.deepStrictEqual(yield* RelayStore.migrate, [
    [6, "machine_name_key"],
    [7, "machine_gate"]
  ])
  const rows = yield* sql<{ readonly name_key: string }>`SELECT name_key FROM machines WHERE id = ${machineId}`
  assert.deepStrictEqual(
    rows.map((r) => r.name_key),
    ["ärger-box"]
  )
  const store = yield* Effect.provide(RelayStore.RelayStore, RelayStore.layerSql)
  const clash = yield* Effect.flip(
    store.registerMachine({
      id: RelayStore.MachineRegistration.fields.id.make(randomUUID()),
      workspaceId: WorkspaceId.make("ws_old"),
      hostname: "new-box",
      name: "ärger-BOX",
      os: "linux",
      agentVersion: "0.1.0",
      secretHash: randomBytes(32).toString("hex")
    })
  )
  assert.deepStrictEqual(clash.conflict, { field: "name", value: "ärger-BOX", machineId })
})

describe("RelayStore on SQLite", () => {
  it.effect("keeps its data in a real file that a new layer reopens", () =>
    Effect.gen(function* () {
      const path = join(tempDir(), "relay", "relay.db")
      const written = yield* Effect.provide(registerOne, RelayStore.layerSqlite({ path }))
      assert.isTrue(existsSync(path), `${path} exists`)

      const reopened = yield* Effect.gen(function* () {
        const store = yield* RelayStore.RelayStore
        return {
          workspace: yield* store.getWorkspace(written.workspace.name),
          identity: yield* store.authenticateKey(written.apiKey),
          machine: yield* store.getMachine(written.machine.id),
          machines: yield* store.listMachines(written.workspace.id)
        }
      }).pipe(Effect.provide(RelayStore.layerSqlite({ path })))
      assert.deepStrictEqual(reopened.workspace, written.workspace)
      assert.strictEqual(Option.getOrThrow(reopened.identity).workspaceId, written.workspace.id)
      assert.deepStrictEqual(
        reopened.machine,
        new RelayStore.MachineRecord({ ...written.machine, online: true, lastHeartbeatAt: 42 })
      )
      assert.deepStrictEqual(
        reopened.machines.map((m) => m.id),
        [written.machine.id]
      )
    })
  )

  it.effect("the contract's database file exists and is in WAL mode", () =>
    Effect.gen(function* () {
      assert.isTrue(existsSync(sqlitePath), `${sqlitePath} exists`)
      // Key hashes and signing secrets live here: the file is 0600 in a 0700 directory.
      assert.strictEqual(statSync(sqlitePath).mode & 0o777, 0o600)
      assert.strictEqual(statSync(dirname(sqlitePath)).mode & 0o777, 0o700)
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<{ readonly journal_mode: string }>`PRAGMA journal_mode`
      assert.strictEqual(row?.journal_mode, "wal")
    }).pipe(Effect.provide(LibsqlClient.layer({ url: "file:" + sqlitePath })))
  )

  it.effect("migrations are idempotent", () =>
    migrationsAreIdempotent.pipe(Effect.provide(LibsqlClient.layer({ url: "file:" + join(tempDir(), "migrate.db") })))
  )

  it.effect("0006 backfills the name keys of existing machines", () =>
    nameKeysAreBackfilled.pipe(Effect.provide(LibsqlClient.layer({ url: "file:" + join(tempDir(), "backfill.db") })))
  )
})

// Last in the file: when PostgreSQL is down, this block fails loudly, and vitest then also fails the tests after it.
relayStoreContract(
  "postgres",
  Layer.unwrapScoped(Effect.map(freshPgSchema, ({ url }) => RelayStore.layerPostgres({ url })))
)

describe("RelayStore on PostgreSQL", () => {
  it.scoped("migrations are idempotent", () =>
    Effect.gen(function* () {
      const { url } = yield* freshPgSchema
      yield* migrationsAreIdempotent.pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url) })))
    })
  )

  it.scoped("0006 backfills the name keys of existing machines", () =>
    Effect.gen(function* () {
      const { url } = yield* freshPgSchema
      yield* nameKeysAreBackfilled.pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url) })))
    })
  )

  it.effect("an unreachable server is a store error without the password", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.provide(RelayStore.RelayStore, RelayStore.layerPostgres({ url: "postgres://u:hunter2@127.0.0.1:1/x" }))
      )
      assert.strictEqual(error.reason, "Sql")
      assert.notInclude(error.message, "hunter2")
      assert.include(error.message, "PostgreSQL")
      assert.include(error.message, "is PostgreSQL running, on that host and port?")
    })
  )

  it.effect("a database that does not exist is named as such, with what to do", () =>
    Effect.gen(function* () {
      const url = Postgres.PG_URL.replace(/\/[^/]*$/, "/cmdop_no_such_database")
      const error = yield* Effect.flip(Effect.provide(RelayStore.RelayStore, RelayStore.layerPostgres({ url })))
      assert.strictEqual(error.reason, "Sql")
      assert.include(error.message, "3D000")
      assert.include(error.message, "the database does not exist: create it with createdb")
    })
  )
})
