/**
 * The cluster tables on PostgreSQL, applied by `@effect/sql`'s Migrator with their own migrations table
 * (`cmdop_cluster_migrations`), so they share the database with the relay and account stores without touching
 * their migrations: the nodes' leases and the routing table. Lease times are the database's clock
 * (`clock_timestamp()`), so the nodes' own clocks may drift without a live node looking dead. A route row stays
 * when its stream closes (`node_id` NULL): its epoch keeps growing across the machine's connections.
 * Migrations only ever get appended; never edit a shipped one.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"

/** The table the Migrator records applied cluster migrations in. */
export const migrationsTable = "cmdop_cluster_migrations"

const init = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE cluster_nodes (
    node_id TEXT PRIMARY KEY NOT NULL,
    peer_address TEXT NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL
  )`
  yield* sql`CREATE TABLE cluster_routes (
    machine_id TEXT PRIMARY KEY NOT NULL,
    node_id TEXT,
    epoch BIGINT NOT NULL
  )`
  yield* sql`CREATE INDEX cluster_routes_node ON cluster_routes (node_id)`
})

/** Each run of a node renews its lease under its own random token (node ids must be unique, `MachineRoutes.ts`). */
const instances = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE cluster_nodes ADD COLUMN instance TEXT NOT NULL DEFAULT ''`
})

/** Where agents reach each node (its gRPC address), told to agents in Welcome as a failover hint. */
const clientAddresses = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE cluster_nodes ADD COLUMN client_address TEXT NOT NULL DEFAULT ''`
})

/**
 * A fingerprint of each node's cluster secret (`PeerSecret.fingerprint`, never the secret): a node started with
 * another secret than the live nodes' is refused before it serves. Empty for nodes of earlier versions.
 */
const secretFingerprints = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE cluster_nodes ADD COLUMN secret_fingerprint TEXT NOT NULL DEFAULT ''`
})

/** Every migration, by `<id>_<name>`. */
export const migrations = {
  "0001_init": init,
  "0002_instances": instances,
  "0003_client_addresses": clientAddresses,
  "0004_secret_fingerprints": secretFingerprints
}

/** Applies the cluster migrations not yet recorded (safe on every start, from several nodes at once). */
export const migrate: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient
> = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: migrationsTable })
