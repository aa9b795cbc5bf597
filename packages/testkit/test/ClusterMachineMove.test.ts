/**
 * A machine moved to another workspace, across nodes: two in-process relay nodes (`RelayServer.serve`, cluster mode,
 * real peer ports) on one fresh real PostgreSQL database, a real agent daemon on node A in workspace `acme`, clients
 * and a guest on node B. The machine's agent re-registers with workspace `beta`'s key on node A (the same machine:
 * same identity, same secret). Through node B, `acme` no longer sees or reaches it and its share link (minted on
 * node A, used through node B's page before the move) is refused, while `beta` reaches it (forwarded to node A).
 */
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import * as RelayServer from "@cmdop/relay/RelayServer"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as TerminalClient from "@cmdop/relay/web/TerminalClient"
import { eventually } from "@cmdop/test-helpers/Eventually"
import { freePort } from "@cmdop/test-helpers/FreePort"
import { freshPgDatabase } from "@cmdop/test-helpers/Postgres"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import { startAgent } from "./daemonAgent.js"

const SECRET = Redacted.make(randomBytes(24).toString("hex"))

/** A node on `db` whose peer port the other node reaches (it forwards and is forwarded to). */
const node = (db: Redacted.Redacted<string>, nodeId: string) =>
  Effect.flatMap(freePort, (peerPort) =>
    RelayServer.serve({
      dataDir: "/nonexistent/unused",
      db,
      host: "127.0.0.1",
      grpcPort: 0,
      httpPort: 0,
      cluster: { nodeId, peerAddress: `127.0.0.1:${peerPort}`, peerPort, secret: SECRET }
    })
  )

const client = (server: string, key: string) => RelayClientGrpc.make({ server, apiKey: Redacted.make(key) })

/** `argv`'s stdout on `machine`. */
const execText = (c: Effect.Effect.Success<ReturnType<typeof client>>, machine: string, argv: Array<string>) =>
  Effect.map(Stream.runCollect(c.exec({ machine, argv })), (events) =>
    Buffer.concat(Chunk.toReadonlyArray(events).flatMap((e) => (e._tag === "Stdout" ? [e.data] : []))).toString()
  )

describe("a machine moved across workspaces, seen from another node", () => {
  it.scopedLive(
    "through node B the old workspace loses the machine and its link, the new one reaches it",
    () =>
      Effect.gen(function* () {
        const db = Redacted.make(yield* freshPgDatabase("cmdop_cluster_move"))
        const a = yield* node(db, "node-a")
        const b = yield* node(db, "node-b")
        const host = yield* Layer.build(RelayStore.layerPostgres({ url: db }))
        const store = Context.get(host, RelayStore.RelayStore)
        const acmeWorkspace = yield* store.createWorkspace(WorkspaceName.make("acme"))
        const betaWorkspace = yield* store.createWorkspace(WorkspaceName.make("beta"))
        const acme = Redacted.value(acmeWorkspace.apiKey)
        const beta = Redacted.value(betaWorkspace.apiKey)

        // box joins acme on node A; its daemon runs in a scope of its own, so it can be stopped and started again.
        const home = yield* TempHome.make("cmdop-move-box-")
        const first = yield* Scope.make()
        const machineId = yield* startAgent(acme, "box", a.grpcAddress, home).pipe(Scope.extend(first))
        const acmeOnB = yield* client(b.grpcAddress, acme)
        const betaOnB = yield* client(b.grpcAddress, beta)
        yield* eventually(
          "box reachable for acme through node B",
          Effect.map(Effect.either(execText(acmeOnB, "box", ["echo", "acme"])), (r) =>
            r._tag === "Right" && r.right === "acme\n" ? true : undefined
          ),
          { timeout: "30 seconds", interval: "100 millis" }
        )
        // A guest link for box, minted by acme on node A, works through node B's page.
        const acmeOnA = yield* client(a.grpcAddress, acme)
        const minted = yield* acmeOnA.createShare("box", 3600)
        const page = yield* TerminalClient.connect(
          `ws://${b.httpAddress.replace(/^http:\/\//, "")}/s/${minted.token}/ws`
        )
        yield* page.send({ type: "start", cols: 80, rows: 24 })
        yield* page.type("echo guest-$((6*7))\r")
        let seen = ""
        yield* Effect.gen(function* () {
          while (!seen.includes("guest-42")) {
            const item = yield* Queue.take(page.received)
            if (item._tag === "Output") seen += Buffer.from(item.data).toString("utf8")
          }
        }).pipe(Effect.timeoutFail({ duration: "15 seconds", onTimeout: () => new Error(`no guest echo: ${seen}`) }))
        yield* page.close

        // The move: the same machine comes back with beta's key, on node A.
        yield* Scope.close(first, Exit.void)
        const again = yield* startAgent(beta, "box", a.grpcAddress, home)
        assert.strictEqual(again, machineId, "the daemon kept its identity")
        yield* eventually(
          "box reachable for beta through node B (forwarded to node A)",
          Effect.map(Effect.either(execText(betaOnB, "box", ["echo", "beta"])), (r) =>
            r._tag === "Right" && r.right === "beta\n" ? true : undefined
          ),
          { timeout: "30 seconds", interval: "100 millis" }
        )
        assert.strictEqual((yield* store.getMachine(machineId)).workspaceId, betaWorkspace.workspace.id)

        // Through node B, acme neither lists nor reaches box any more, and its link is refused.
        const listed = yield* acmeOnB.listMachines({ onlineOnly: false })
        assert.isFalse(
          listed.machines.some((m) => m.id === machineId),
          "acme still lists the moved machine on node B"
        )
        const refused = yield* Effect.flip(execText(acmeOnB, "box", ["echo", "still-acme"]))
        assert.match(refused.message, /box/)
        assert.notMatch(refused.message, /unavailable|did not answer/i, "a refusal, not a link failure")
        const betaListed = yield* betaOnB.listMachines({ onlineOnly: true })
        assert.isTrue(
          betaListed.machines.some((m) => m.id === machineId && m.online),
          "beta lists box online on B"
        )
        const linkRefused = yield* TerminalClient.upgradeRefusal(`${b.httpAddress}/s/${minted.token}/ws`)
        assert.isAtLeast(linkRefused.status, 400, `acme's link for the moved box: ${linkRefused.status}`)
      }),
    120_000
  )
})
