/**
 * `MachineRoutes` on PostgreSQL, the store of cluster mode: every node reads and writes the same two tables
 * (`clusterMigrations.ts`). A claim is one upsert that bumps the machine's epoch, so two nodes claiming at once get
 * distinct epochs and the later one holds the route; a release clears the route only while it still names the
 * releasing node and epoch. Liveness is judged on the database's clock.
 */
import type { MachineId } from "@cmdop/domain/Machine"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { explain } from "../store/sqlSupport.js"
import { migrate } from "./clusterMigrations.js"
import {
  defaultLeaseMs,
  MachineRoutes,
  MachineRoutesError,
  NodeIdInUse,
  type NodeInfo,
  type NodeLease,
  type Route
} from "./MachineRoutes.js"

interface NodeRow {
  readonly node_id: string
  readonly peer_address: string
  readonly client_address: string
  readonly renewed_ms: string | number
  readonly secret_fingerprint: string
}

interface HolderRow {
  readonly instance: string
  readonly peer_address: string
  readonly live: boolean
  readonly age_ms: string | number
}

interface RouteRow {
  readonly machine_id: string
  readonly node_id: string
  readonly peer_address: string
  readonly epoch: string | number
}

const toNode = (row: NodeRow): NodeInfo => ({
  nodeId: row.node_id,
  peerAddress: row.peer_address,
  clientAddress: row.client_address,
  renewedAt: Number(row.renewed_ms),
  secretFingerprint: row.secret_fingerprint
})

const toRoute = (row: RouteRow): Route => ({
  machineId: row.machine_id as MachineId,
  nodeId: row.node_id,
  peerAddress: row.peer_address,
  epoch: Number(row.epoch)
})

/** A failed statement as the callers see it (never with the connection URL): the driver's code and a hint. */
const failure =
  (operation: string) =>
  (error: { readonly message: string; readonly cause?: unknown }): MachineRoutesError =>
    new MachineRoutesError({ operation, detail: explain(error) })

/** Runs the cluster migrations, their failures (which the Migrator raises as defects) as `MachineRoutesError`. */
export const migrateOrFail: Effect.Effect<void, MachineRoutesError, SqlClient.SqlClient> = migrate.pipe(
  Effect.mapError(failure("migrating the cluster tables")),
  Effect.catchSomeDefect((defect) =>
    defect instanceof Migrator.MigrationError
      ? Option.some(Effect.fail(failure("migrating the cluster tables")(defect)))
      : Option.none()
  ),
  Effect.asVoid
)

/** Builds the service on the ambient PostgreSQL client, migrating the cluster tables first. */
export const make = (
  leaseMs: number = defaultLeaseMs
): Effect.Effect<MachineRoutes["Type"], MachineRoutesError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* migrateOrFail
    const lease = `${Math.max(1, Math.round(leaseMs))} milliseconds`
    const liveNodes = sql<NodeRow>`SELECT node_id, peer_address, client_address, secret_fingerprint,
        (EXTRACT(EPOCH FROM renewed_at) * 1000)::BIGINT AS renewed_ms
      FROM cluster_nodes WHERE renewed_at > clock_timestamp() - ${lease}::INTERVAL ORDER BY node_id`.pipe(
      Effect.map((rows) => rows.map(toNode)),
      Effect.mapError(failure("listing live nodes"))
    )
    const liveRoutes = (machineIds: ReadonlyArray<MachineId>) =>
      sql<RouteRow>`SELECT r.machine_id, r.node_id, n.peer_address, r.epoch
        FROM cluster_routes r JOIN cluster_nodes n ON n.node_id = r.node_id
        WHERE r.machine_id IN ${sql.in(machineIds)}
          AND n.renewed_at > clock_timestamp() - ${lease}::INTERVAL`.pipe(Effect.map((rows) => rows.map(toRoute)))

    const inUse = (node: NodeLease, holder: HolderRow | undefined) =>
      new NodeIdInUse({
        nodeId: node.nodeId,
        holderAddress: holder?.peer_address ?? "another address",
        ageMs: Number(holder?.age_ms ?? 0)
      })
    // One transaction: the holder row is locked while this run decides, and the guarded upsert refuses a live
    // lease of another instance even when two runs insert the id at once (the loser's clearing rolls back).
    const renew = (node: NodeLease) =>
      sql.withTransaction(
        Effect.gen(function* () {
          const [holder] = yield* sql<HolderRow>`SELECT instance, peer_address,
              renewed_at > clock_timestamp() - ${lease}::INTERVAL AS live,
              (EXTRACT(EPOCH FROM clock_timestamp() - renewed_at) * 1000)::BIGINT AS age_ms
            FROM cluster_nodes WHERE node_id = ${node.nodeId} FOR UPDATE`
          if (holder !== undefined && holder.instance !== node.instance && holder.live)
            return yield* inUse(node, holder)
          if (holder?.instance !== node.instance)
            yield* sql`UPDATE cluster_routes SET node_id = NULL WHERE node_id = ${node.nodeId}`
          const renewed = yield* sql`INSERT INTO cluster_nodes
              (node_id, peer_address, client_address, instance, secret_fingerprint, renewed_at)
            VALUES (${node.nodeId}, ${node.peerAddress}, ${node.clientAddress ?? ""}, ${node.instance},
              ${node.secretFingerprint ?? ""}, clock_timestamp())
            ON CONFLICT (node_id) DO UPDATE SET peer_address = EXCLUDED.peer_address,
              client_address = EXCLUDED.client_address, instance = EXCLUDED.instance,
              secret_fingerprint = EXCLUDED.secret_fingerprint,
              renewed_at = EXCLUDED.renewed_at
            WHERE cluster_nodes.instance = EXCLUDED.instance
              OR cluster_nodes.renewed_at <= clock_timestamp() - ${lease}::INTERVAL
            RETURNING node_id`
          if (renewed.length === 0) return yield* inUse(node, undefined)
        })
      )

    return MachineRoutes.of({
      renewLease: (node) =>
        renew(node).pipe(
          Effect.catchTag("SqlError", (e) => Effect.fail(failure(`renewing the lease of node ${node.nodeId}`)(e))),
          Effect.zipRight(liveNodes)
        ),
      dropLease: (node) =>
        sql
          .withTransaction(
            Effect.zipRight(
              sql`UPDATE cluster_routes SET node_id = NULL WHERE node_id = ${node.nodeId}
                AND EXISTS (SELECT 1 FROM cluster_nodes WHERE node_id = ${node.nodeId} AND instance = ${node.instance})`,
              sql`DELETE FROM cluster_nodes WHERE node_id = ${node.nodeId} AND instance = ${node.instance}`
            )
          )
          .pipe(Effect.asVoid, Effect.mapError(failure(`dropping the lease of node ${node.nodeId}`))),
      liveNodes,
      claim: (machineId, nodeId) =>
        sql<{ readonly epoch: string | number }>`INSERT INTO cluster_routes (machine_id, node_id, epoch)
          VALUES (${machineId}, ${nodeId}, 1)
          ON CONFLICT (machine_id) DO UPDATE SET node_id = EXCLUDED.node_id, epoch = cluster_routes.epoch + 1
          RETURNING epoch`.pipe(
          Effect.map((rows) => Number(rows[0]?.epoch)),
          Effect.mapError(failure(`claiming machine ${machineId} for node ${nodeId}`))
        ),
      release: (machineId, nodeId, epoch) =>
        sql`UPDATE cluster_routes SET node_id = NULL
          WHERE machine_id = ${machineId} AND node_id = ${nodeId} AND epoch = ${epoch}`.pipe(
          Effect.asVoid,
          Effect.mapError(failure(`releasing machine ${machineId} from node ${nodeId}`))
        ),
      releaseNode: (nodeId) =>
        sql`UPDATE cluster_routes SET node_id = NULL WHERE node_id = ${nodeId}`.pipe(
          Effect.asVoid,
          Effect.mapError(failure(`releasing the machines of node ${nodeId}`))
        ),
      locate: (machineId) =>
        liveRoutes([machineId]).pipe(
          Effect.map((routes) => Option.fromNullable(routes[0])),
          Effect.mapError(failure(`locating machine ${machineId}`))
        ),
      locateMany: (machineIds) =>
        machineIds.length === 0
          ? Effect.succeed(new Map())
          : liveRoutes(machineIds).pipe(
              Effect.map((routes) => new Map(routes.map((route) => [route.machineId, route] as const))),
              Effect.mapError(failure(`locating ${machineIds.length} machines`))
            )
    })
  })

/** The routing table on the PostgreSQL client in context. */
export const layerSql = (leaseMs?: number): Layer.Layer<MachineRoutes, MachineRoutesError, SqlClient.SqlClient> =>
  Layer.effect(MachineRoutes, make(leaseMs))

/** The routing table on PostgreSQL at `url`; fails when the server cannot be reached within 5 seconds. */
export const layerPostgres = (options: {
  readonly url: Redacted.Redacted<string>
  readonly leaseMs?: number
}): Layer.Layer<MachineRoutes, MachineRoutesError> =>
  layerSql(options.leaseMs).pipe(
    Layer.provide(
      PgClient.layer({ url: options.url, connectTimeout: Duration.seconds(5) }).pipe(
        Layer.mapError(failure("connecting to PostgreSQL"))
      )
    )
  )
