/**
 * A node's lease: taken at start (clearing what an earlier run of the same node id left), renewed on its
 * schedule, given up when the scope closes; its view of the cluster, as `/healthz` and `/metrics` report it.
 */
import { MachineId } from "@cmdop/domain/Machine"
import * as ClusterHealth from "@cmdop/relay/cluster/ClusterHealth"
import * as ClusterNode from "@cmdop/relay/cluster/ClusterNode"
import { MachineRoutes, layerMemory } from "@cmdop/relay/cluster/MachineRoutes"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
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
  it.effect("takes its lease, renews it every third of it, drops it with its routes when the scope closes", () =>
    Effect.gen(function* () {
      const routes = yield* MachineRoutes
      const stale = MachineId.make(randomUUID())
      // What an earlier run of n1 left behind (its streams died with it).
      yield* routes.renewLease({ nodeId: "n1", peerAddress: "old:1" })
      yield* routes.claim(stale, "n1")
      yield* routes.renewLease({ nodeId: "n2", peerAddress: "10.0.0.2:50052" })

      const scope = yield* Scope.make()
      const node = yield* ClusterNode.make(config).pipe(Scope.extend(scope))
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
      yield* routes.renewLease({ nodeId: "n2", peerAddress: "10.0.0.2:50052" })
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
})
