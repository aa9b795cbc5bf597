/**
 * Nodes of a cluster often start together (a deploy, a host reboot), and each one migrates the shared database
 * when it starts: the relay store, the account store, the cluster tables, the event triggers. The migrators are
 * not all safe to run side by side on a fresh database (two nodes creating the same table: one fails), so a node
 * holds this PostgreSQL advisory lock from before its store is opened until it serves. The lock lives on its own
 * connection: closing it (the scope's end, or the process dying) releases it.
 *
 * A single relay (no `--node-id`) started on a cluster's database would share it without a lease: it would read
 * every machine the nodes hold as offline and write their stored flags. It refuses to start while live nodes hold
 * leases there (`refuseLiveNodes`); a database without the cluster tables, or with lapsed leases only, is its own.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { sqlFailure } from "../store/sqlSupport.js"
import { ClusterStartError } from "./ClusterMode.js"
import { defaultLeaseMs } from "./MachineRoutes.js"

/** Arbitrary, fixed: the advisory lock nodes take turns starting under. */
const STARTUP_LOCK = 0x636d_6473

/**
 * Waits (at most `timeout`, default 2 minutes) for the startup lock and holds it for the life of the scope. When
 * another node holds it, `progress` is told at once what the node waits for and how long at most (default: logged).
 */
export const lock = (
  db: Redacted.Redacted<string>,
  options: {
    readonly timeout?: Duration.DurationInput
    readonly progress?: (line: string) => Effect.Effect<void>
  } = {}
): Effect.Effect<void, ClusterStartError, Scope.Scope> =>
  Effect.gen(function* () {
    // One connection, so the lock and its release are on the same session.
    const sql = yield* oneConnection(db)
    const timeout = Duration.decode(options.timeout ?? "2 minutes")
    const [free] = yield* sql<{
      readonly locked: boolean
    }>`SELECT pg_try_advisory_lock(${STARTUP_LOCK}) AS locked`.pipe(
      Effect.mapError((e) => startError("taking the cluster startup lock", e))
    )
    if (free?.locked !== true)
      yield* (options.progress ?? ((line) => Effect.logInfo(line)))(
        `another relay node is starting on this database (it holds the startup lock): waiting for it, at most ${Duration.format(timeout)}`
      )
    yield* (free?.locked === true ? Effect.void : Effect.asVoid(sql`SELECT pg_advisory_lock(${STARTUP_LOCK})`)).pipe(
      Effect.mapError((e) => startError("taking the cluster startup lock", e)),
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new ClusterStartError({
            message: `another relay node has been starting for over ${Duration.format(timeout)} (it holds the startup lock); check its log`
          })
      })
    )
    yield* Effect.addFinalizer(() => Effect.ignore(sql`SELECT pg_advisory_unlock(${STARTUP_LOCK})`))
  })

/**
 * Fails when nodes of a cluster hold live leases on the PostgreSQL at `db` (a relay started there without
 * `--node-id` would give wrong answers), naming them and the fix. Nothing is created or changed.
 */
export const refuseLiveNodes = (db: Redacted.Redacted<string>): Effect.Effect<void, ClusterStartError> =>
  Effect.gen(function* () {
    const sql = yield* oneConnection(db)
    const lease = `${defaultLeaseMs} milliseconds`
    const nodes = yield* Effect.gen(function* () {
      const [table] = yield* sql<{ readonly present: boolean }>`SELECT
        to_regclass('cluster_nodes') IS NOT NULL AS present`
      if (table?.present !== true) return []
      return yield* sql<{ readonly node_id: string; readonly peer_address: string }>`SELECT node_id, peer_address
        FROM cluster_nodes WHERE renewed_at > clock_timestamp() - ${lease}::INTERVAL ORDER BY node_id`
    }).pipe(Effect.mapError((e) => startError("looking for the leases of cluster nodes", e)))
    if (nodes.length === 0) return
    const named = nodes.map((n) => `${n.node_id} (${n.peer_address})`).join(", ")
    return yield* new ClusterStartError({
      message:
        `this database is a relay cluster's: ${nodes.length === 1 ? "node" : "nodes"} ${named} ` +
        `${nodes.length === 1 ? "holds a live lease" : "hold live leases"} there, and a relay without --node-id ` +
        "would show their machines offline; start it as a node of that cluster (add --node-id and the cluster's " +
        "--cluster-secret) or give it another database (--db)"
    })
  }).pipe(Effect.scoped)

/**
 * What a single relay (no `--node-id`) on PostgreSQL holds while it serves: a session advisory lock on its own
 * connection, keyed by the database's schema too (several relays' stores may share one database under different
 * schemas). A single relay holds no lease, so without it nothing would tell a cluster node, or a second single
 * relay, that one already serves this store: both would mark the machines the other holds offline.
 */
const SINGLE_LOCK = 0x636d_6431

/** One connection of its own to `db`, for the life of the scope (a session lock lives and dies with it). */
const oneConnection = (db: Redacted.Redacted<string>) =>
  Effect.map(
    Layer.build(PgClient.layer({ url: db, connectTimeout: Duration.seconds(5), maxConnections: 1 })).pipe(
      Effect.mapError((e) => startError("connecting to PostgreSQL", e))
    ),
    (context) => Context.get(context, SqlClient.SqlClient)
  )

/** Takes the single relay's lock for the life of the scope, if it is free; whether it was. */
const takeSingle = (db: Redacted.Redacted<string>, operation: string) =>
  Effect.gen(function* () {
    const sql = yield* oneConnection(db)
    const [row] = yield* sql<{
      readonly locked: boolean
    }>`SELECT pg_try_advisory_lock(${SINGLE_LOCK}, hashtext(current_schema())) AS locked`.pipe(
      Effect.mapError((e) => startError(operation, e))
    )
    if (row?.locked !== true) return false
    yield* Effect.addFinalizer(() =>
      Effect.ignore(sql`SELECT pg_advisory_unlock(${SINGLE_LOCK}, hashtext(current_schema()))`)
    )
    return true
  })

/** Holds the single relay's lock for the life of the scope; fails when another relay holds it. */
export const holdSingle = (db: Redacted.Redacted<string>): Effect.Effect<void, ClusterStartError, Scope.Scope> =>
  Effect.flatMap(takeSingle(db, "taking the single relay's lock"), (free) =>
    free
      ? Effect.void
      : new ClusterStartError({
          message:
            "another relay without --node-id already serves this database: one such relay per database, or make " +
            "them nodes of a cluster (--node-id and --cluster-secret on each)"
        })
  )

/** Fails when a single relay serves the database (it holds its lock); checked by a cluster node before it starts. */
export const refuseSingle = (db: Redacted.Redacted<string>): Effect.Effect<void, ClusterStartError> =>
  Effect.scoped(
    Effect.flatMap(takeSingle(db, "looking for a single relay on this database"), (free) =>
      free
        ? Effect.void
        : new ClusterStartError({
            message:
              "a relay without --node-id serves this database: cluster nodes next to it would contradict it (each " +
              "sees the other's machines offline); stop it first, then start every relay as a node of the cluster"
          })
    )
  )

/** A database failure at startup, said as the single-node relay says it (the code, and what to do about it). */
const startError = (operation: string, error: { readonly message: string; readonly cause?: unknown }) =>
  new ClusterStartError({ message: sqlFailure(operation, error).message })
