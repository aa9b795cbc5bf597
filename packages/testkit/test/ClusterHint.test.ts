/**
 * The preferred-node hint: in cluster mode every node's `Welcome` names where agents reach the live nodes, so an
 * agent started with node A's address only learns node B's, and when A goes away it comes back through B. Two
 * in-process nodes (`RelayServer.serve`, cluster mode) on one fresh real PostgreSQL database, a real agent daemon;
 * once in plaintext, once with TLS nodes and an agent given `https://` and its CA in `CMDOP_TLS_CA`, where the
 * hint (a bare `host:port`) is dialed over TLS too and the agent's status names the node it is on.
 */
import { MachineId } from "@cmdop/domain/Machine"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import { ClusterNode } from "@cmdop/relay/cluster/ClusterNode"
import { MachineRoutes } from "@cmdop/relay/cluster/MachineRoutes"
import * as RelayStore from "@cmdop/relay/RelayStore"
import { eventually } from "@cmdop/test-helpers/Eventually"
import { freshPgDatabase } from "@cmdop/test-helpers/Postgres"
import * as TempHome from "@cmdop/test-helpers/TempHome"
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
import * as fs from "node:fs"
import * as path from "node:path"
import { clusterNode } from "./clusterNode.js"
import { startAgent } from "./daemonAgent.js"

/** The test kit's certificate for `localhost` and 127.0.0.1, which is its own CA. */
const fixtures = new URL("../fixtures/", import.meta.url).pathname
const certFile = path.join(fixtures, "localhost.crt")
const tls = () => ({
  certChain: fs.readFileSync(certFile, "utf8"),
  privateKey: fs.readFileSync(path.join(fixtures, "localhost.key"), "utf8")
})

/** A cluster node in this process, on the shared database; its client port serves TLS with `secure`. */
const node = (db: Redacted.Redacted<string>, nodeId: string, secure = false) =>
  clusterNode(db, nodeId, { leaseMs: 3_000, ...(secure ? { tls: tls() } : {}) })

/** Sets `CMDOP_TLS_CA` (which the in-process agent reads at every dial) for the scope; restores it after. */
const trustingTestCa = Effect.acquireRelease(
  Effect.sync(() => {
    const before = process.env["CMDOP_TLS_CA"]
    process.env["CMDOP_TLS_CA"] = certFile
    return before
  }),
  (before) =>
    Effect.sync(() => {
      if (before === undefined) delete process.env["CMDOP_TLS_CA"]
      else process.env["CMDOP_TLS_CA"] = before
    })
)

/** The agent's `daemon.status` in `home`, once written. */
const daemonStatus = (home: string) =>
  Effect.sync((): { readonly state?: string; readonly relay?: string; readonly server?: string } | undefined => {
    try {
      return JSON.parse(fs.readFileSync(path.join(home, ".cmdop", "daemon.status"), "utf8"))
    } catch {
      return undefined
    }
  })

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

  it.scopedLive(
    "TLS nodes: an agent given https://A fails over to B over TLS, and its status names the node it is on",
    () =>
      Effect.gen(function* () {
        yield* trustingTestCa
        const db = Redacted.make(yield* freshPgDatabase("cmdop_cluster_hint_tls"))
        const scopeA = yield* Scope.make()
        const a = yield* node(db, "node-a", true).pipe(Scope.extend(scopeA))
        const b = yield* node(db, "node-b", true)
        const nodeA = Context.get(a.cluster!, ClusterNode)
        const routes = Context.get(b.cluster!, MachineRoutes)
        // Node A tells agents both nodes' addresses, bare host:port, as every node does.
        yield* eventually(
          "node A's view of both nodes' client addresses",
          Effect.map(nodeA.relayAddresses, (list) => (list.length === 2 ? list : undefined)),
          { timeout: "20 seconds", interval: "50 millis" }
        )

        const store = Context.get(yield* Layer.build(RelayStore.layerPostgres({ url: db })), RelayStore.RelayStore)
        const key = Redacted.value((yield* store.createWorkspace(WorkspaceName.make("acme"))).apiKey)
        const home = yield* TempHome.make("cmdop-hint-tls-agent-")
        const server = `https://${a.grpcAddress}`
        const machineId = yield* startAgent(key, "roamer", server, home)
        const holder = Effect.map(routes.locate(MachineId.make(machineId)), (r) => Option.getOrUndefined(r)?.nodeId)
        yield* eventually(
          "the agent online through node A",
          Effect.map(holder, (id) => (id === "node-a" ? id : undefined)),
          { timeout: "20 seconds", interval: "20 millis" }
        )
        const onA = yield* eventually(
          "the status naming node A",
          Effect.map(daemonStatus(home), (s) => (s?.state === "ONLINE" ? s : undefined)),
          { timeout: "10 seconds", interval: "20 millis" }
        )

        // Node A goes away; the agent reaches B at the address A told it, over TLS (a plaintext dial of a TLS node
        // fails every time: the agent would never come back).
        yield* Scope.close(scopeA, Exit.void)
        yield* eventually(
          "the agent back online through node B",
          Effect.map(holder, (id) => (id === "node-b" ? id : undefined)),
          { timeout: "20 seconds", interval: "20 millis" }
        )
        const onB = yield* eventually(
          "the status naming node B",
          Effect.map(daemonStatus(home), (s) => (s?.state === "ONLINE" && s.relay !== server ? s : undefined)),
          { timeout: "10 seconds", interval: "20 millis" }
        )
        assert.strictEqual(onA.relay, server)
        assert.strictEqual(onB.relay, `https://${b.grpcAddress}`)
        assert.strictEqual(onB.server, server)
      }),
    120_000
  )
})
