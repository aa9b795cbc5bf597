/**
 * The preferred-node hint: in cluster mode every node's `Welcome` names where agents reach the live nodes, so an
 * agent started with node A's address only learns node B's, and when A goes away it comes back through B. Two
 * in-process nodes (`RelayServer.serve`, cluster mode) on one fresh real PostgreSQL database, a real agent daemon.
 */
import { MachineId } from "@cmdop/domain/Machine"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import { ClusterNode } from "@cmdop/relay/cluster/ClusterNode"
import { MachineRoutes } from "@cmdop/relay/cluster/MachineRoutes"
import * as RelayStore from "@cmdop/relay/RelayStore"
import { eventually } from "@cmdop/test-helpers/Eventually"
import { freshPgDatabase } from "@cmdop/test-helpers/Postgres"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { clusterNode } from "./clusterNode.js"
import { startAgent } from "./daemonAgent.js"

/** A cluster node in this process, on the shared database. */
const node = (db: Redacted.Redacted<string>, nodeId: string) => clusterNode(db, nodeId, { leaseMs: 3_000 })

describe("the preferred-node hint", () => {
  it.scopedLive(
    "an agent started with node A's address only fails over to node B, which A's Welcome told it about",
    () =>
      Effect.gen(function* () {
        const db = Redacted.make(yield* freshPgDatabase("cmdop_cluster_hint"))
        const scopeA = yield* Scope.make()
        const a = yield* node(db, "node-a").pipe(Scope.extend(scopeA))
        const b = yield* node(db, "node-b")
        const nodeA = Context.get(a.cluster!, ClusterNode)
        const routes = Context.get(b.cluster!, MachineRoutes)
        // Node A knows both nodes' client addresses (its own, and B's from the shared lease table).
        const told = yield* eventually(
          "node A's view of both nodes' client addresses",
          Effect.map(nodeA.relayAddresses, (list) => (list.length === 2 ? list : undefined)),
          { timeout: "20 seconds", interval: "50 millis" }
        )
        assert.deepStrictEqual(told, [a.grpcAddress, b.grpcAddress])

        const store = Context.get(yield* Layer.build(RelayStore.layerPostgres({ url: db })), RelayStore.RelayStore)
        const acme = yield* store.createWorkspace(WorkspaceName.make("acme"))
        const key = Redacted.value(acme.apiKey)
        const machineId = yield* startAgent(key, "roamer", a.grpcAddress)
        const holder = Effect.map(routes.locate(MachineId.make(machineId)), (r) => Option.getOrUndefined(r)?.nodeId)
        assert.strictEqual(
          yield* eventually("the agent online through node A", holder, {
            timeout: "20 seconds",
            interval: "20 millis"
          }),
          "node-a"
        )

        // Node A goes away; the agent, given only A's address, comes back through B.
        yield* Scope.close(scopeA, Exit.void)
        const back = yield* eventually(
          "the agent back online through node B",
          Effect.map(holder, (id) => (id === "node-b" ? id : undefined)),
          { timeout: "30 seconds", interval: "20 millis" }
        )
        assert.strictEqual(back, "node-b")
        const client = yield* RelayClientGrpc.make({ server: b.grpcAddress, apiKey: Redacted.make(key) })
        const out = yield* Stream.runCollect(client.exec({ machine: "roamer", argv: ["echo", "via-b"] }))
        const stdout = Chunk.toReadonlyArray(out).flatMap((e) => (e._tag === "Stdout" ? [e.data] : []))
        assert.strictEqual(Buffer.concat(stdout).toString(), "via-b\n")
      }),
    120_000
  )
})
