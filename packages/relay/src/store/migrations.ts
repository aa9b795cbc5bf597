/**
 * The relay store's schema, applied by `@effect/sql`'s Migrator when a SQL layer is built. The same statements
 * run on SQLite and PostgreSQL: text ids, `BIGINT` milliseconds since the epoch, `INTEGER` 0/1 flags; only the
 * auto-increment key of `share_events` differs. Migrations only ever get appended; never edit a shipped one.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"

/** The table the Migrator records applied migrations in. */
export const migrationsTable = "cmdop_relay_migrations"

const init = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE workspaces (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    key_generation INTEGER NOT NULL
  )`
  yield* sql`CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    generation INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
  )`
  yield* sql`CREATE INDEX api_keys_workspace ON api_keys (workspace_id)`
  yield* sql`CREATE TABLE machines (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    hostname TEXT NOT NULL,
    hostname_key TEXT NOT NULL,
    name TEXT NOT NULL,
    os TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    online INTEGER NOT NULL DEFAULT 0,
    last_heartbeat_at BIGINT,
    registered_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  )`
  yield* sql`CREATE UNIQUE INDEX machines_workspace_hostname ON machines (workspace_id, hostname_key)`
  yield* sql`CREATE UNIQUE INDEX machines_workspace_name ON machines (workspace_id, name)`
  yield* sql`CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    algorithm TEXT NOT NULL,
    material TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
  )`
  yield* sql`CREATE TABLE share_links (
    id TEXT PRIMARY KEY NOT NULL,
    workspace_id TEXT NOT NULL,
    machine_id TEXT NOT NULL,
    creator TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    key_generation INTEGER NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT,
    use_count INTEGER NOT NULL DEFAULT 0
  )`
  yield* sql`CREATE INDEX share_links_workspace ON share_links (workspace_id, machine_id)`
  yield* sql.onDialectOrElse({
    pg: () => sql`CREATE TABLE share_events (
      id BIGSERIAL PRIMARY KEY,
      link_id TEXT NOT NULL,
      kind TEXT NOT NULL,
      detail TEXT NOT NULL DEFAULT '',
      at BIGINT NOT NULL
    )`,
    orElse: () => sql`CREATE TABLE share_events (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      link_id TEXT NOT NULL,
      kind TEXT NOT NULL,
      detail TEXT NOT NULL DEFAULT '',
      at BIGINT NOT NULL
    )`
  })
  yield* sql`CREATE INDEX share_events_link ON share_events (link_id)`
})

/**
 * Share links keep the hostname they were minted for (the machine may be removed later; the audit still names
 * it), and when their `expired` event was recorded, so it is recorded once however many relays see it expire.
 */
const shareLinks = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE share_links ADD COLUMN machine_hostname TEXT NOT NULL DEFAULT ''`
  yield* sql`ALTER TABLE share_links ADD COLUMN expiry_recorded_at BIGINT`
})

/**
 * A share link may be scoped to one interactive session (pair debugging), and records the id of the key that
 * signed its token, so a listing can show links whose key was retired as no longer working.
 */
const shareLinkScope = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE share_links ADD COLUMN session_id TEXT`
  yield* sql`ALTER TABLE share_links ADD COLUMN signing_kid TEXT`
})

/**
 * A workspace may have several API keys, each with a name its owner picked ("ci", "laptop"); keys minted before
 * are the workspace's `default`. No two live keys of a workspace share a name (a partial unique index, which
 * SQLite and PostgreSQL both support).
 */
const apiKeys = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE api_keys ADD COLUMN name TEXT NOT NULL DEFAULT 'default'`
  yield* sql`CREATE UNIQUE INDEX api_keys_live_name ON api_keys (workspace_id, name) WHERE retired_at IS NULL`
})

/**
 * Share links are listed a page at a time in (created_at, id) order, per workspace and per machine: keyset pages
 * read from these indexes instead of sorting every link of the workspace. The first replaces the index on
 * (workspace_id, machine_id), which the second covers.
 */
const shareListIndex = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE INDEX share_links_listing ON share_links (workspace_id, created_at, id)`
  yield* sql`CREATE INDEX share_links_machine_listing ON share_links (workspace_id, machine_id, created_at, id)`
  yield* sql`DROP INDEX share_links_workspace`
})

/**
 * A registration checks its hostname and name against the other machines of the workspace with one indexed query:
 * `name_key` is the name lower-cased as `hostname_key` is, in JavaScript (databases lower-case non-ASCII
 * differently), so the existing rows are backfilled here, one by one, not with SQL's `lower`. Not unique: the
 * clash check keeps names and hostnames apart, the index only finds them.
 */
const machineNameKey = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE machines ADD COLUMN name_key TEXT NOT NULL DEFAULT ''`
  const rows = yield* sql<{ readonly id: string; readonly name: string }>`SELECT id, name FROM machines`
  for (const row of rows) yield* sql`UPDATE machines SET name_key = ${row.name.toLowerCase()} WHERE id = ${row.id}`
  yield* sql`CREATE INDEX machines_workspace_name_key ON machines (workspace_id, name_key)`
})

/**
 * Whether the machine's agent has a gate (a permissions file), as it said at its last connect or heartbeat (NULL:
 * an agent too old to say). Kept in the store so that every relay node lists it, not only the one holding the
 * agent's stream.
 */
const machineGate = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE machines ADD COLUMN gate_configured INTEGER`
})

/** Every migration, by `<id>_<name>`. */
export const migrations = {
  "0001_init": init,
  "0002_share_links": shareLinks,
  "0003_share_link_scope": shareLinkScope,
  "0004_api_keys": apiKeys,
  "0005_share_list_index": shareListIndex,
  "0006_machine_name_key": machineNameKey,
  "0007_machine_gate": machineGate
}

/**
 * Applies the migrations not yet recorded and returns them (empty when the schema is current). Safe to run on
 * every start and from several relays at once: PostgreSQL serialises runs with a table lock.
 */
export const migrate: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient
> = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: migrationsTable })
