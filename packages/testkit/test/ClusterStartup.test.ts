/**
 * What a person starting `cmdop relay serve` on a cluster's database is told, with real processes: one node on a
 * fresh PostgreSQL database, then the starts that must not join it — a single relay (no `--node-id`) refused while
 * the node's lease is live, a node with another cluster secret refused, a node with its id and peer address saying
 * at once on stderr that it waits (then refused), and a cluster node given a database it cannot open told why, as
 * a single relay is.
 */
import { freshPgDatabase, PG_URL } from "@cmdop/test-helpers/Postgres"
import { freePort } from "@cmdop/test-helpers/FreePort"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Processes from "@cmdop/testkit/Processes"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"

const SECRET = randomBytes(32).toString("hex")

/** `relay serve` with `args` on free ports, run to its end (it must stop at once): its exit code and stderr. */
const serveOnce = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const home = yield* TempHome.make("cmdop-cluster-start-")
    const [grpc, http] = [yield* freePort, yield* freePort]
    return yield* Processes.run(
      home,
      ["relay", "serve", "--grpc-port", String(grpc), "--http-port", String(http), ...args],
      { env, timeoutMs: 30_000 }
    )
  })

describe("relay serve next to a cluster", () => {
  it.scopedLive(
    "refused starts next to a live node: no --node-id, another secret, its id and address (said while it waits), a bad --db",
    () =>
      Effect.gen(function* () {
        const db = yield* freshPgDatabase("cmdop_cluster_start")
        const home = yield* TempHome.make("cmdop-cluster-node1-")
        const [grpc, http, peer] = [yield* freePort, yield* freePort, yield* freePort]
        yield* Processes.daemon(
          home,
          [
            "relay",
            "serve",
            "--db",
            db,
            "--node-id",
            "relay-1",
            "--grpc-port",
            String(grpc),
            "--http-port",
            String(http),
            "--peer-port",
            String(peer),
            "--peer-address",
            `127.0.0.1:${peer}`
          ],
          /relay serving/,
          { env: { CMDOP_CLUSTER_SECRET: SECRET }, timeoutMs: 60_000 }
        )

        // Without --node-id on the cluster's database: one line naming the live node and the fix.
        const single = yield* serveOnce(["--db", db])
        assert.notStrictEqual(single.code, 0, single.stderr)
        assert.include(single.stderr, `node relay-1 (127.0.0.1:${peer}) holds a live lease there`)
        assert.include(single.stderr, "add --node-id and the cluster's --cluster-secret")
        assert.strictEqual(single.stderr.trim().split("\n").length, 1, single.stderr)

        // A node with another cluster secret than the live node's: refused before it serves, in one line.
        const stranger = yield* serveOnce(
          ["--db", db, "--node-id", "relay-2", "--peer-port", String(yield* freePort)],
          { CMDOP_CLUSTER_SECRET: randomBytes(32).toString("hex") }
        )
        assert.notStrictEqual(stranger.code, 0, stranger.stderr)
        assert.include(
          stranger.stderr,
          "the cluster secret of node relay-2 differs from the one the live node relay-1 uses"
        )
        assert.include(stranger.stderr, "give every node the same --cluster-secret")
        assert.notInclude(stranger.stderr, "relay serving")

        // The node's id and peer address again, while it runs: what it waits for is said at once on stderr, then
        // the refusal; --json's stdout holds the error document alone.
        const twin = yield* serveOnce(
          [
            "--db",
            db,
            "--node-id",
            "relay-1",
            "--peer-port",
            String(yield* freePort),
            "--peer-address",
            `127.0.0.1:${peer}`,
            "--json"
          ],
          { CMDOP_CLUSTER_SECRET: SECRET }
        )
        assert.notStrictEqual(twin.code, 0, twin.stderr)
        const [waiting, ...rest] = twin.stderr.trim().split("\n")
        assert.include(
          waiting,
          `cmdop: node id relay-1 has a live lease at this node's own peer address 127.0.0.1:${peer}`
        )
        assert.include(waiting, "waiting for it to lapse, at most 20s")
        assert.include(rest.join("\n"), "node id relay-1 is already in use by a live relay node")
        assert.notInclude(twin.stdout, "waiting")
        assert.include(JSON.parse(twin.stdout).error, "already in use")

        // A node whose gRPC port is taken (here: the live node's peer port) says so and exits at once: a start
        // that failed once stayed running, holding a database connection, and a service manager never restarted it.
        const clash = yield* Effect.timed(
          Processes.run(
            yield* TempHome.make("cmdop-cluster-clash-"),
            [
              "relay",
              "serve",
              "--db",
              db,
              "--node-id",
              "relay-5",
              "--grpc-port",
              String(peer),
              "--http-port",
              String(yield* freePort),
              "--peer-port",
              String(yield* freePort)
            ],
            { env: { CMDOP_CLUSTER_SECRET: SECRET }, timeoutMs: 20_000 }
          )
        )
        assert.strictEqual(clash[1].code, 255, clash[1].stderr)
        assert.include(clash[1].stderr, `cannot listen on 127.0.0.1:${peer}`)
        assert.isBelow(Duration.toMillis(clash[0]), 10_000)

        // A node whose --db cannot be opened says why, and what to do.
        const node = (url: string) => serveOnce(["--db", url, "--node-id", "relay-4"], { CMDOP_CLUSTER_SECRET: SECRET })
        const nothing = yield* node("postgres://postgres@127.0.0.1:1/x")
        assert.notStrictEqual(nothing.code, 0)
        assert.include(nothing.stderr, "ECONNREFUSED (nothing listens there")
        const missing = yield* node(PG_URL.replace(/\/[^/]*$/, "/cmdop_no_such_database"))
        assert.include(missing.stderr, "3D000 (the database does not exist: create it with createdb")
      }),
    120_000
  )
})
