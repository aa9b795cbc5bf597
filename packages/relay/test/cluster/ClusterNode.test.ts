/**
 * A node's lease: taken at start (clearing what an earlier run of the same node id left), renewed on its
 * schedule, given up when the scope closes; its view of the cluster, as `/healthz` and `/metrics` report it.
 */
import { MachineId } from "@cmdop/domain/Machine"
import * as ClusterHealth from "@cmdop/relay/cluster/ClusterHealth"
import * as ClusterNode from "@cmdop/relay/cluster/ClusterNode"
import { MachineRoutes, MachineRoutesError, NodeIdInUse, layerMemory } from "@cmdop/relay/cluster/MachineRoutes"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { randomUUID } from "node:crypto"

const config: ClusterNode.ClusterConfig = {
  nodeId: "n1",
  peerAddress: "10.0.0.1:50052",
  peerPort: 50052,
  secret: Redacted.make("0123456789abcdef0123"),
  leaseMs: 9_000
}

describe("ClusterNode", () => {
  it.effect("a failing renewal is logged once with its cause, and its end once", () =>
    Effect.gen(function* () {
      const logged: Array<string> = []
      const capture = Logger.make(({ logLevel, message }) => logged.push(`${logLevel.label} ${String(message)}`))
      let failing = false
      const routes = yield* MachineRoutes
      const flaky = MachineRoutes.of({
        ...routes,
        renewLease: (node) =>
          failing
            ? Effect.fail(new MachineRoutesError({ operation: "renewing a lease", detail: "connection refused" }))
            : routes.renewLease(node)
      })
      yield* ClusterNode.make(config).pipe(
        Effect.provideService(MachineRoutes, flaky),
        Effect.provide(Logger.replace(Logger.defaultLogger, capture))
      )
      failing = true
      for (let i = 0; i < 4; i++) yield* TestClock.adjust("3 seconds")
      failing = false
      for (let i = 0; i < 2; i++) yield* TestClock.adjust("3 seconds")
      assert.deepStrictEqual(
        logged.filter((line) => line.includes("renewing")),
        [
          "WARN renewing the cluster lease of n1 failed: connection refused",
          "INFO renewing the cluster lease of n1 works again (it failed: connection refused)"
        ]
      )
    }).pipe(Effect.scoped, Effect.provide(layerMemory(9_000)))
  )

  it.effect("takes its lease, renews it every third of it, drops it with its routes when the scope closes", () =>
    Effect.gen(function* () {
      const routes = yield* MachineRoutes
      const stale = MachineId.make(randomUUID())
      // What an earlier run of n1 (same address, killed) left behind: a lease still live, and a route.
      yield* routes.renewLease({ nodeId: "n1", peerAddress: config.peerAddress, instance: "earlier-run" })
      yield* routes.claim(stale, "n1")

      const scope = yield* Scope.make()
      const starting = yield* ClusterNode.make(config).pipe(Scope.extend(scope), Effect.fork)
      // The restart waits for the dead run's lease to lapse before it takes the id over.
      yield* TestClock.adjust("8 seconds")
      assert.isNull(starting.unsafePoll(), "waits while the earlier run's lease is live")
      assert.isTrue(Option.isSome(yield* routes.locate(stale)))
      yield* TestClock.adjust("2 seconds")
      yield* routes.renewLease({ nodeId: "n2", peerAddress: "10.0.0.2:50052", instance: "i2" })
      const node = yield* Fiber.join(starting)
      assert.isTrue(Option.isNone(yield* routes.locate(stale)), "the earlier run's routes are gone")
      assert.deepStrictEqual(
        (yield* routes.liveNodes).map((n) => [n.nodeId, n.peerAddress]),
        [
          ["n1", "10.0.0.1:50052"],
          ["n2", "10.0.0.2:50052"]
        ]
      )
      // n2 stops renewing; n1 keeps its lease through renewals.
      for (let i = 0; i < 6; i++) yield* TestClock.adjust("3 seconds")
      assert.deepStrictEqual(
        (yield* routes.liveNodes).map((n) => n.nodeId),
        ["n1"]
      )
      const view = yield* node.view
      assert.isBelow(view.leaseAgeMs, 3_001)
      assert.deepStrictEqual(view.peers, [])
      yield* node.countForwarded
      yield* node.countPeerError
      yield* node.countPeerError
      const counted = yield* node.view
      assert.strictEqual(counted.forwardedSessions, 1)
      assert.strictEqual(counted.peerErrors, 2)

      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* routes.liveNodes, [])
    }).pipe(Effect.provide(layerMemory(9_000)))
  )

  it.effect("its view ages the peers' leases, and drops a peer whose lease lapsed since the last renewal", () =>
    Effect.gen(function* () {
      const routes = yield* MachineRoutes
      yield* routes.renewLease({ nodeId: "n2", peerAddress: "10.0.0.2:50052", instance: "i2" })
      yield* TestClock.adjust("1 second")
      const node = yield* ClusterNode.make({ ...config, renewEvery: "1 hour" })
      const first = yield* node.view
      assert.deepStrictEqual(first.peers, [{ nodeId: "n2", peerAddress: "10.0.0.2:50052", leaseAgeMs: 1_000 }])
      yield* TestClock.adjust("8 seconds")
      assert.deepStrictEqual((yield* node.view).peers, [])
      // n1 did not renew for 8 s of a 9 s lease: still healthy; past 9 s it reports 503 for the load balancer.
      assert.strictEqual(ClusterHealth.health(yield* node.view).status, 200)
      yield* TestClock.adjust("1 second")
      const lapsed = ClusterHealth.health(yield* node.view)
      assert.strictEqual(lapsed.status, 503)
      assert.strictEqual(lapsed.body.status, "lease lapsed")
      assert.include(
        ClusterHealth.metricLines(yield* node.view).join("\n"),
        'cmdop_cluster_lease_age_seconds{node="n1"} 9.000'
      )
    }).pipe(Effect.scoped, Effect.provide(layerMemory(9_000)))
  )
  it.effect("refuses to start with a node id live under another peer address, naming it and the fix", () =>
    Effect.gen(function* () {
      const first = yield* ClusterNode.make({ ...config, nodeId: "dup", peerAddress: "10.0.0.7:50052" })
      const second = yield* Effect.flip(ClusterNode.make({ ...config, nodeId: "dup", peerAddress: "10.0.0.8:50052" }))
      assert.instanceOf(second, NodeIdInUse)
      assert.include(second.message, "node id dup is already in use by a live relay node at 10.0.0.7:50052")
      assert.include(second.message, "--node-id")
      // The refused start changed nothing: the first node keeps its lease and address.
      const routes = yield* MachineRoutes
      assert.deepStrictEqual(
        (yield* routes.liveNodes).map((n) => [n.nodeId, n.peerAddress]),
        [["dup", "10.0.0.7:50052"]]
      )
      assert.strictEqual((yield* first.view).peers.length, 0)
    }).pipe(Effect.scoped, Effect.provide(layerMemory(9_000)))
  )

  it.effect("says at once that it waits for its earlier run's lease to lapse, and for how long at most", () =>
    Effect.gen(function* () {
      const routes = yield* MachineRoutes
      yield* routes.renewLease({ nodeId: "n1", peerAddress: config.peerAddress, instance: "earlier-run" })
      const told: Array<string> = []
      const progress = (line: string) => Effect.sync(() => void told.push(line))
      const starting = yield* ClusterNode.make({ ...config, progress }).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      assert.isNull(starting.unsafePoll(), "still waiting")
      assert.strictEqual(told.length, 1)
      assert.include(told[0]!, "node id n1 has a live lease at this node's own peer address 10.0.0.1:50052")
      assert.include(told[0]!, "waiting for it to lapse, at most 18s")
      yield* TestClock.adjust("9 seconds")
      yield* Fiber.join(starting)
      assert.strictEqual(told.length, 1, "told once")
    }).pipe(Effect.scoped, Effect.provide(layerMemory(9_000)))
  )

  it.effect("refuses to start with the peer address another live node registered, naming it and the fix", () =>
    Effect.gen(function* () {
      const routes = yield* MachineRoutes
      yield* ClusterNode.make({ ...config, nodeId: "n2", peerAddress: "10.0.0.2:50052" })
      const refused = yield* Effect.flip(ClusterNode.make({ ...config, nodeId: "n4", peerAddress: "10.0.0.2:50052" }))
      assert.instanceOf(refused, ClusterNode.PeerAddressInUse)
      assert.strictEqual(
        refused.message,
        "--peer-address 10.0.0.2:50052 of node n4 is the live node n2's: every node needs its own, the address " +
          "where the other nodes reach its --peer-port (its host and that port)"
      )
      assert.deepStrictEqual(
        (yield* routes.liveNodes).map((n) => n.nodeId),
        ["n2"]
      )
      // Its own address joins; and a restart of n2 at its own address is n2's, not a clash.
      yield* ClusterNode.make({ ...config, nodeId: "n4", peerAddress: "10.0.0.4:50052" })
    }).pipe(Effect.scoped, Effect.provide(layerMemory()))
  )

  it.effect("refuses to start with another cluster secret than the live nodes', naming them and the fix", () =>
    Effect.gen(function* () {
      const routes = yield* MachineRoutes
      const other = Redacted.make("another-secret-0123456789")
      yield* ClusterNode.make({ ...config, nodeId: "n2", peerAddress: "10.0.0.2:50052" })
      yield* ClusterNode.make({ ...config, nodeId: "n3", peerAddress: "10.0.0.3:50052" })
      const refused = yield* Effect.flip(ClusterNode.make({ ...config, secret: other }))
      assert.instanceOf(refused, ClusterNode.ClusterSecretMismatch)
      assert.strictEqual(
        refused.message,
        "the cluster secret of node n1 differs from the one the live nodes n2, n3 use: give every node the same " +
          "--cluster-secret (or CMDOP_CLUSTER_SECRET); to change it, stop every node first"
      )
      // Refused before its lease: the cluster is as it was. The stored fingerprint is not the secret.
      const live = yield* routes.liveNodes
      assert.deepStrictEqual(
        live.map((n) => n.nodeId),
        ["n2", "n3"]
      )
      assert.match(live[0]!.secretFingerprint, /^[0-9a-f]{64}$/)
      assert.notInclude(live[0]!.secretFingerprint, Redacted.value(config.secret))
      // The same secret joins.
      yield* ClusterNode.make({ ...config, nodeId: "n4", peerAddress: "10.0.0.4:50052" })
    }).pipe(Effect.scoped, Effect.provide(layerMemory(9_000)))
  )

  it.effect("starts next to nodes that recorded no secret fingerprint (earlier versions), and alone", () =>
    Effect.gen(function* () {
      const routes = yield* MachineRoutes
      yield* routes.renewLease({ nodeId: "old", peerAddress: "10.0.0.5:50052", instance: "i-old" })
      yield* ClusterNode.make({ ...config, secret: Redacted.make("another-secret-0123456789") })
      assert.deepStrictEqual(
        (yield* routes.liveNodes).map((n) => n.nodeId),
        ["n1", "old"]
      )
    }).pipe(Effect.scoped, Effect.provide(layerMemory(9_000)))
  )
})
