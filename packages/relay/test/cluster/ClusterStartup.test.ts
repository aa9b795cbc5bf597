/**
 * Nodes take turns starting: a second node waits for the startup lock until the first one is done (its scope
 * closed, or its process gone), then gets it.
 */
import * as ClusterStartup from "@cmdop/relay/cluster/ClusterStartup"
import * as RelayServer from "@cmdop/relay/RelayServer"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Schedule from "effect/Schedule"
import * as net from "node:net"
import { freshPgSchema, PG_URL, withPg } from "@cmdop/test-helpers/Postgres"

/** `RelayServer.serve`'s options for node `nodeId` of a cluster on `db`, on ports of the system's choosing. */
const nodeOptions = (db: Redacted.Redacted<string>, nodeId: string) => ({
  dataDir: "/nonexistent/unused",
  db,
  host: "127.0.0.1",
  grpcPort: 0,
  httpPort: 0,
  cluster: { nodeId, peerAddress: "127.0.0.1:1", peerPort: 0, secret: Redacted.make("0123456789abcdef0123") }
})

describe("ClusterStartup", () => {
  it.live("a database it cannot open is said as the single-node relay says it: the code and what to do", () =>
    Effect.gen(function* () {
      const refused = (url: string) =>
        Effect.map(Effect.flip(Effect.scoped(ClusterStartup.lock(Redacted.make(url)))), (e) => e.message)
      const nothing = yield* refused("postgres://postgres:hunter2@127.0.0.1:1/x")
      assert.include(nothing, "ECONNREFUSED (nothing listens there: is PostgreSQL running, on that host and port?)")
      assert.notInclude(nothing, "hunter2")
      const missing = yield* refused(PG_URL.replace(/\/[^/]*$/, "/cmdop_no_such_database"))
      assert.include(missing, "3D000 (the database does not exist: create it with createdb")
      const stranger = yield* refused(PG_URL.replace("postgres@", "cmdop_no_such_user@"))
      assert.match(stranger, /28000 \(the server refused this user|28P01 \(the server refused the password/)
    })
  )

  it.live("a second node waits for the first to finish starting", () =>
    Effect.gen(function* () {
      const db = Redacted.make(PG_URL)
      const first = yield* Scope.make()
      yield* ClusterStartup.lock(db).pipe(Scope.extend(first))
      const second = yield* Effect.fork(Effect.scoped(ClusterStartup.lock(db)))
      // Still waiting while the first holds it, and saying so at once: a short wait for it times out.
      const told: Array<string> = []
      const progress = (line: string) => Effect.sync(() => void told.push(line))
      const early = yield* Effect.scoped(ClusterStartup.lock(db, { timeout: "300 millis", progress })).pipe(Effect.flip)
      assert.include(early.message, "holds the startup lock")
      assert.deepStrictEqual(told, [
        "another relay node is starting on this database (it holds the startup lock): waiting for it, at most 300ms"
      ])
      assert.isTrue((yield* Fiber.poll(second))._tag === "None", "the second node is still waiting")
      yield* Scope.close(first, Exit.void)
      yield* Fiber.join(second).pipe(Effect.timeout("10 seconds"))
    })
  )

  it.live("the in-process RelayServer.serve of a cluster node waits for the startup lock too", () =>
    Effect.gen(function* () {
      const { url } = yield* freshPgSchema("cmdop_cluster")
      const db = Redacted.make(url)
      const holder = yield* Scope.make()
      yield* ClusterStartup.lock(db).pipe(Scope.extend(holder))
      const serving = yield* Effect.fork(
        Effect.scoped(Effect.zipRight(RelayServer.serve(nodeOptions(db, "lock-test")), Effect.succeed("served")))
      )
      // The node's request for the lock is queued behind the holder (PostgreSQL shows it not granted).
      const sql = yield* SqlClient.SqlClient
      yield* sql<{ readonly n: string | number }>`SELECT count(*) AS n FROM pg_locks
        WHERE locktype = 'advisory' AND objid = ${0x636d_6473} AND NOT granted`.pipe(
        Effect.repeat({ until: (rows) => Number(rows[0]?.n) > 0, schedule: Schedule.spaced("20 millis") }),
        Effect.timeout("20 seconds")
      )
      assert.isTrue((yield* Fiber.poll(serving))._tag === "None", "the node waits while another one starts")
      yield* Scope.close(holder, Exit.void)
      assert.strictEqual(yield* Fiber.join(serving).pipe(Effect.timeout("30 seconds")), "served")
    }).pipe(Effect.scoped, Effect.provide(PgClient.layer({ url: Redacted.make(PG_URL) })))
  )

  it.live("a single relay holds its database: a second one and a cluster node are refused until it stops", () =>
    Effect.gen(function* () {
      const { url } = yield* freshPgSchema("cmdop_cluster")
      const db = Redacted.make(url)
      const { cluster: _none, ...alone } = nodeOptions(db, "unused")
      const first = yield* Scope.make()
      yield* RelayServer.serve(alone).pipe(Scope.extend(first))
      const second = yield* Effect.flip(Effect.scoped(RelayServer.serve(alone)))
      assert.include(second.message, "another relay without --node-id already serves this database")
      const node = yield* Effect.flip(Effect.scoped(RelayServer.serve(nodeOptions(db, "relay-3"))))
      assert.include(node.message, "a relay without --node-id serves this database")
      assert.include(node.message, "stop it first")
      // Stopped (its connection closed, the lock with it): both may start now.
      yield* Scope.close(first, Exit.void)
      yield* Effect.scoped(RelayServer.serve(nodeOptions(db, "relay-3")))
      // The cluster node stopped cleanly (no live lease left): a single relay starts again.
      yield* Effect.scoped(RelayServer.serve(alone))
    }).pipe(Effect.scoped)
  )

  it.live("a peer port already taken is one error that says how to pick another", () =>
    Effect.gen(function* () {
      const { url } = yield* freshPgSchema("cmdop_cluster")
      const taken = yield* Effect.acquireRelease(
        Effect.async<net.Server>((resume) => {
          const server = net.createServer().listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      const port = (taken.address() as net.AddressInfo).port
      const options = nodeOptions(Redacted.make(url), "relay-9")
      const error = yield* Effect.flip(
        Effect.scoped(RelayServer.serve({ ...options, cluster: { ...options.cluster, peerPort: port } }))
      )
      assert.include(error.message, `the peer port: cannot listen on 127.0.0.1:${port}`)
      assert.include(error.message, "pick another with --peer-port")
    }).pipe(Effect.scoped)
  )

  it.live("a single relay refuses a database where cluster nodes hold live leases, and starts where none do", () =>
    Effect.gen(function* () {
      const { url } = yield* freshPgSchema("cmdop_cluster")
      const db = Redacted.make(url)
      const { cluster: _none, ...alone } = nodeOptions(db, "unused")
      const single = Effect.scoped(RelayServer.serve(alone))
      // No cluster tables yet: a single relay's own database.
      yield* ClusterStartup.refuseLiveNodes(db)
      const node = yield* Scope.make()
      yield* RelayServer.serve(nodeOptions(db, "relay-7")).pipe(Scope.extend(node))
      const refused = yield* Effect.flip(single)
      assert.include(refused.message, "node relay-7 (127.0.0.1:1) holds a live lease there")
      assert.include(refused.message, "add --node-id and the cluster's --cluster-secret")
      assert.include(refused.message, "or give it another database")
      // The node stopped cleanly (its lease given up), or only a lapsed lease left behind: a single relay starts.
      yield* Scope.close(node, Exit.void)
      yield* single
      yield* withPg(
        url,
        (sql) => sql`INSERT INTO cluster_nodes (node_id, peer_address, instance, renewed_at)
          VALUES ('relay-8', '127.0.0.1:2', 'gone', clock_timestamp() - INTERVAL '1 minute')`
      )
      yield* single
    }).pipe(Effect.scoped)
  )
})
