/**
 * Forwarding between relay nodes in one process (real gRPC between their peer ports, one memory store and routing
 * table): the whole `RelayClient` contract with the client on node 1 and every machine on node 2, then what only a
 * cluster has: attach and reattach with replay across nodes, the owning node's refusals passed on as they are,
 * the counters, and a dead node's machine reported unavailable.
 */
import * as AuditLog from "@cmdop/agent/AuditLog"
import * as Gate from "@cmdop/agent/Gate"
import { parsePolicy } from "@cmdop/gate/PolicyFile"
import * as PolicyStore from "@cmdop/gate/PolicyStore"
import { warmUp } from "@cmdop/gate/Reader"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import * as ApiKey from "@cmdop/domain/ApiKey"
import type { MachineId } from "@cmdop/domain/Machine"
import type { ExecEvent } from "@cmdop/domain/RelayClient"
import { relayClientContract } from "@cmdop/domain/testing/RelayClientContract"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import * as RelayClientInProcess from "@cmdop/relay/RelayClientInProcess"
import * as InProcessAgent from "@cmdop/testkit/InProcessAgent"
import * as InProcessCluster from "@cmdop/testkit/InProcessCluster"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { eventually } from "@cmdop/test-helpers/Eventually"
import * as Liveness from "@cmdop/test-helpers/Liveness"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as fs from "node:fs"
import * as path from "node:path"

const clientOf = (node: InProcessCluster.Node, key: string) =>
  Effect.provide(RelayClientInProcess.make(Redacted.make(key)), node.context)

/**
 * The clients of the forwarding suite: in this process (node 1 reads the forwarded answers decoded) or over gRPC on
 * the node's client port (node 1 passes them through as bytes, `forwardPassthrough.ts`).
 */
const clientsVia = {
  "in-process": clientOf,
  gRPC: (node: InProcessCluster.Node, key: string) =>
    RelayClientGrpc.make({ server: node.grpcAddress, apiKey: Redacted.make(key) })
} as const

relayClientContract("cluster (client on node 1, machines on node 2)", () =>
  Effect.gen(function* () {
    const cluster = yield* InProcessCluster.make(2)
    const [one, two] = cluster.nodes as [InProcessCluster.Node, InProcessCluster.Node]
    const a = yield* cluster.store.createWorkspace(WorkspaceName.make("team-a"))
    const b = yield* cluster.store.createWorkspace(WorkspaceName.make("team-b"))
    const keyA = Redacted.value(a.apiKey)
    const keyB = Redacted.value(b.apiKey)
    yield* Effect.forEach(["web-1", "web-2", "db-1"], (h) => two.attachAgent(keyA, h))
    const old = yield* two.attachAgent(keyA, "old-1")
    yield* old.stop
    yield* two.attachAgent(keyB, "b-box")
    return {
      a: yield* clientOf(one, keyA),
      b: yield* clientOf(one, keyB),
      stranger: yield* clientOf(one, Redacted.value(ApiKey.generate())),
      workspaceA: "team-a",
      workspaceB: "team-b"
    }
  })
)

// The same with the clients over gRPC on node 1's client port: node 1 passes the forwarded calls' answers through
// as bytes (`forwardPassthrough.ts`), where the in-process clients above read them decoded.
relayClientContract("cluster over gRPC (client on node 1, machines on node 2, answers passed through)", () =>
  Effect.gen(function* () {
    const cluster = yield* InProcessCluster.make(2)
    const [one, two] = cluster.nodes as [InProcessCluster.Node, InProcessCluster.Node]
    const a = yield* cluster.store.createWorkspace(WorkspaceName.make("team-a"))
    const b = yield* cluster.store.createWorkspace(WorkspaceName.make("team-b"))
    yield* Effect.forEach(["web-1", "web-2", "db-1"], (h) => two.attachAgent(Redacted.value(a.apiKey), h))
    const old = yield* two.attachAgent(Redacted.value(a.apiKey), "old-1")
    yield* old.stop
    yield* two.attachAgent(Redacted.value(b.apiKey), "b-box")
    const grpcClient = (apiKey: Redacted.Redacted<string>) => RelayClientGrpc.make({ server: one.grpcAddress, apiKey })
    return {
      a: yield* grpcClient(a.apiKey),
      b: yield* grpcClient(b.apiKey),
      stranger: yield* grpcClient(ApiKey.generate()),
      workspaceA: "team-a",
      workspaceB: "team-b"
    }
  })
)

/** Waits until `holds` (a gRPC client's call ends for it a moment before the relay has closed its session). */
const settled = (what: string, holds: () => boolean) =>
  eventually(
    what,
    Effect.sync(() => (holds() ? true : undefined)),
    { timeout: "5 seconds", interval: "10 millis" }
  )

/** Guests' `printf` waits for a key holder's answer. */
const ASK_GUESTS = `default: {key: allow, user: allow, guest: deny}
rules:
  - {action: ask, caller: guest, command: "printf *"}
`

const text = (events: ReadonlyArray<{ readonly _tag: string }>) =>
  Buffer.concat(
    events.flatMap((e) => (e._tag === "Output" ? [(e as unknown as { data: Uint8Array }).data] : []))
  ).toString("utf8")

for (const via of ["in-process", "gRPC"] as const)
  describe(`cluster forwarding (${via} clients)`, () => {
    const clientOf = clientsVia[via]
    /** Forwarded sessions whose answers node 1 passed through as bytes: every one of a gRPC client's. */
    const passed = (n: number) => (via === "gRPC" ? n : 0)
    it.scopedLive("exec on node 1 runs on node 2's machine, counted on both; local calls are not forwarded", () =>
      Effect.gen(function* () {
        const cluster = yield* InProcessCluster.make(2)
        const [one, two] = cluster.nodes as [InProcessCluster.Node, InProcessCluster.Node]
        const key = Redacted.value((yield* cluster.store.createWorkspace(WorkspaceName.make("acme"))).apiKey)
        yield* two.attachAgent(key, "far")
        yield* one.attachAgent(key, "near")
        const client = yield* clientOf(one, key)
        const far = Chunk.toReadonlyArray(
          yield* Stream.runCollect(client.exec({ machine: "far", argv: ["sh", "-c", "echo from-far; exit 3"] }))
        )
        const started = far[0]
        assert.strictEqual(started?._tag === "Started" && started.machine.hostname, "far")
        const exit = far.find((e) => e._tag === "Exit")
        assert.strictEqual(exit?._tag === "Exit" && exit.exitCode, 3)
        assert.include(Buffer.concat(far.flatMap((e) => (e._tag === "Stdout" ? [e.data] : []))).toString(), "from-far")
        yield* Stream.runDrain(client.exec({ machine: "near", argv: ["true"] }))
        assert.deepInclude(one.stats.snapshot(), {
          forwardedTotal: 1,
          forwardedLive: 0,
          passedThroughTotal: passed(1),
          peerErrors: 0
        })
        assert.deepInclude(two.stats.snapshot(), { servedTotal: 1, servedLive: 0, refused: 0 })
      })
    )

    it.scopedLive("attach through node 1 opens a shell on node 2's machine; a reattach through node 3 replays it", () =>
      Effect.gen(function* () {
        const cluster = yield* InProcessCluster.make(3)
        const [one, two, three] = cluster.nodes as [InProcessCluster.Node, InProcessCluster.Node, InProcessCluster.Node]
        const key = Redacted.value((yield* cluster.store.createWorkspace(WorkspaceName.make("acme"))).apiKey)
        yield* two.attachAgent(key, "shellbox")
        const first = yield* clientOf(one, key)
        const input = yield* Queue.unbounded<{ readonly _tag: "Data"; readonly data: Uint8Array }>()
        const events = yield* Stream.toPull(
          first.attach({ machine: "shellbox", cols: 80, rows: 24, command: ["sh"] }, Stream.fromQueue(input))
        )
        const attached = Chunk.toReadonlyArray(yield* events)[0]
        assert.strictEqual(attached?._tag, "Attached")
        if (attached?._tag !== "Attached") return
        yield* Queue.offer(input, { _tag: "Data", data: Buffer.from("echo marker-$((6*7))\n") })
        const seen: Array<{ readonly _tag: string }> = []
        yield* eventually(
          "the shell's answer through node 1",
          Effect.map(events, (chunk) => {
            seen.push(...Chunk.toReadonlyArray(chunk))
            return text(seen).includes("marker-42") ? true : undefined
          }),
          { timeout: "10 seconds", interval: "10 millis" }
        )
        yield* Queue.shutdown(input) // detach: the session lives on at the agent
        const listed = yield* eventually(
          "the session listed through node 3",
          Effect.map((yield* clientOf(three, key)).listSessions("shellbox"), ({ sessions }) =>
            sessions.length === 1 && sessions[0]!.viewers === 0 ? sessions : undefined
          ),
          { timeout: "10 seconds", interval: "20 millis" }
        )
        assert.strictEqual(listed[0]!.sessionId, attached.sessionId)
        // The listing above may have taken several calls: the reattach is counted from here.
        const forwardedBefore = three.stats.snapshot().forwardedTotal
        const servedBefore = two.stats.snapshot().servedTotal
        const again = yield* clientOf(three, key)
        const replay = yield* Stream.toPull(
          again.attach({ machine: "shellbox", cols: 80, rows: 24, sessionId: attached.sessionId }, Stream.never)
        )
        const replayed: Array<{ readonly _tag: string }> = []
        yield* eventually(
          "the screen replayed through node 3",
          Effect.map(replay, (chunk) => {
            replayed.push(...Chunk.toReadonlyArray(chunk))
            return text(replayed).includes("marker-42") ? true : undefined
          }),
          { timeout: "10 seconds", interval: "10 millis" }
        )
        const head = replayed[0]
        assert.isTrue(head?._tag === "Attached" && !(head as unknown as { created: boolean }).created)
        assert.strictEqual(three.stats.snapshot().forwardedTotal, forwardedBefore + 1)
        assert.strictEqual(two.stats.snapshot().servedTotal, servedBefore + 1)
      })
    )

    it.scopedLive("a session on node 2's machine is killed through node 1 (the session lives at node 2's agent)", () =>
      Effect.gen(function* () {
        const cluster = yield* InProcessCluster.make(2)
        const [one, two] = cluster.nodes as [InProcessCluster.Node, InProcessCluster.Node]
        const key = Redacted.value((yield* cluster.store.createWorkspace(WorkspaceName.make("acme"))).apiKey)
        yield* two.attachAgent(key, "shellbox")
        const client = yield* clientOf(one, key)
        const input = yield* Queue.unbounded<{ readonly _tag: "Data"; readonly data: Uint8Array }>()
        const events = yield* Stream.toPull(
          client.attach({ machine: "shellbox", cols: 80, rows: 24, command: ["sh"] }, Stream.fromQueue(input))
        )
        const attached = Chunk.toReadonlyArray(yield* events)[0]
        if (attached?._tag !== "Attached") return assert.fail("no Attached first")
        yield* Queue.shutdown(input) // detach: the session lives on at the agent
        yield* eventually(
          "the session detached",
          Effect.map(client.listSessions("shellbox"), ({ sessions }) =>
            sessions.length === 1 && sessions[0]!.viewers === 0 ? true : undefined
          ),
          { timeout: "10 seconds", interval: "20 millis" }
        )
        const killed = yield* client.killSession("shellbox", attached.sessionId)
        assert.strictEqual(killed.ended, true)
        assert.strictEqual(killed.machine.hostname, "shellbox")
        yield* eventually(
          "the session gone from the list",
          Effect.map(client.listSessions("shellbox"), ({ sessions }) => (sessions.length === 0 ? true : undefined)),
          { timeout: "10 seconds", interval: "20 millis" }
        )
        // A session that does not exist is refused by the owning node, as it says it.
        const error = yield* Effect.flip(client.killSession("shellbox", attached.sessionId))
        assert.include(error.message, `no session ${attached.sessionId} on shellbox`)
      })
    )

    it.scopedLive("a request node 2's machine's gate holds is listed and answered through node 1", () =>
      Effect.gen(function* () {
        yield* warmUp
        const cluster = yield* InProcessCluster.make(2)
        const [one, two] = cluster.nodes as [InProcessCluster.Node, InProcessCluster.Node]
        const key = Redacted.value((yield* cluster.store.createWorkspace(WorkspaceName.make("acme"))).apiKey)
        const gate = yield* Gate.make({ auditLog: yield* AuditLog.makeMemory }).pipe(
          Effect.provide(
            PolicyStore.layerFixed(Either.getOrThrow(parsePolicy(ASK_GUESTS, "/etc/cmdop/permissions.yaml")))
          )
        )
        yield* InProcessAgent.attach(key, InProcessAgent.identity({ hostname: "gated" }), {
          hostname: "gated",
          gate: { gate, machine: "gated" }
        }).pipe(Effect.provide(two.context), Effect.provide(ProcessRunner.layer))
        const owner = yield* clientOf(one, key)
        const guest = yield* clientOf(two, (yield* owner.createShare("gated", 3600)).token)
        const held = yield* Effect.fork(
          Stream.runCollect(guest.exec({ machine: "gated", argv: ["printf", "approved"] }))
        )
        const [pending] = yield* eventually(
          "the held request listed through node 1",
          Effect.map(owner.listApprovals, (all) => (all.length === 1 ? all : undefined)),
          { timeout: "10 seconds", interval: "20 millis" }
        )
        assert.strictEqual(pending!.machine, "gated")
        const answered = yield* owner.answerApproval({
          approvalId: pending!.approval.approvalId,
          approve: true,
          forLink: false
        })
        assert.strictEqual(answered.machine, "gated")
        const events = Chunk.toReadonlyArray(yield* Fiber.join(held))
        assert.include(
          Buffer.concat(events.flatMap((e) => (e._tag === "Stdout" ? [e.data] : []))).toString(),
          "approved"
        )
        // Nothing else waits: an answer to it again finds no request anywhere.
        const again = yield* Effect.flip(
          owner.answerApproval({ approvalId: pending!.approval.approvalId, approve: true, forLink: false })
        )
        assert.include(again.message, `no pending approval ${pending!.approval.approvalId}`)
      })
    )

    it.scopedLive("a guest's link works through another node; the owning node's refusals reach it as they are", () =>
      Effect.gen(function* () {
        const cluster = yield* InProcessCluster.make(2)
        const [one, two] = cluster.nodes as [InProcessCluster.Node, InProcessCluster.Node]
        const key = Redacted.value((yield* cluster.store.createWorkspace(WorkspaceName.make("acme"))).apiKey)
        yield* two.attachAgent(key, "far")
        const owner = yield* one.core.authenticate(Redacted.make(key))
        const minted = yield* one.core.createShare(owner, "far", 3600)
        const guest = yield* clientOf(one, minted.token)
        const ran = Chunk.toReadonlyArray(yield* Stream.runCollect(guest.exec({ machine: "far", argv: ["true"] })))
        assert.strictEqual(ran.at(-1)?._tag === "Exit" && ran.at(-1)?._tag, "Exit")
        // Node 2 refuses the guest a session its link does not reach, exactly as for a guest of its own.
        const refused = yield* Effect.flip(
          Stream.runDrain(guest.attach({ machine: "far", cols: 80, rows: 24, sessionId: "not-yours" }, Stream.never))
        )
        assert.strictEqual(refused._tag === "MachineError" && refused.reason, "NotFound")
        assert.include(refused.message, "not-yours")
        // A refusal that names its relay names the one the guest reached, not the owning node (its address is the
        // cluster's insides, and one the guest never dialed).
        const tooBig = yield* Effect.flip(
          Stream.runDrain(guest.exec({ machine: "far", argv: ["echo", "x".repeat(300 * 1024)] }))
        )
        assert.strictEqual(tooBig._tag === "RelayError" && tooBig.reason, "ResourceExhausted")
        assert.include(tooBig.message, "relay node-1 refused")
        assert.notInclude(tooBig.message, "node-2")
        assert.strictEqual(one.stats.snapshot().peerErrors, 0, "a refusal of the owning node is not a peer error")
        assert.strictEqual(two.stats.snapshot().servedTotal, 3)
      })
    )

    it.scopedLive("a stalled reader on node 1 holds back its own session only: node 2's other sessions go on", () =>
      Effect.gen(function* () {
        const cluster = yield* InProcessCluster.make(2)
        const [one, two] = cluster.nodes as [InProcessCluster.Node, InProcessCluster.Node]
        const key = Redacted.value((yield* cluster.store.createWorkspace(WorkspaceName.make("acme"))).apiKey)
        yield* two.attachAgent(key, "far")
        const mark = path.join(yield* TempHome.make("cmdop-cluster-"), "done")
        const stalled = yield* Stream.toPull(
          (yield* clientOf(one, key)).exec({
            machine: "far",
            argv: ["sh", "-c", `head -c 200000000 /dev/zero; touch ${mark}`]
          })
        )
        yield* stalled // Started, maybe a first chunk: then nobody on node 1 reads any more.
        const run = (node: InProcessCluster.Node, word: string) =>
          Effect.flatMap(clientOf(node, key), (client) =>
            Stream.runCollect(client.exec({ machine: "far", argv: ["echo", word] }))
          ).pipe(
            Effect.map((events) =>
              Buffer.concat(
                Chunk.toReadonlyArray(events).flatMap((e) => (e._tag === "Stdout" ? [e.data] : []))
              ).toString()
            ),
            Effect.timeout("15 seconds")
          )
        // Another session forwarded over the same peer channel, and a session of node 2's own client.
        const [forwarded, local] = yield* Effect.all([run(one, "forwarded"), run(two, "local")], { concurrency: 2 })
        assert.strictEqual(forwarded, "forwarded\n")
        assert.strictEqual(local, "local\n")
        // The stalled producer is held by the session's credit, not buffered through: it has not got to its end.
        assert.isFalse(fs.existsSync(mark), "the stalled session's output was buffered instead of held back")
        // A gRPC client has its last answer a moment before node 1 has closed the session.
        yield* settled("only the stalled session live on node 1", () => one.stats.snapshot().forwardedLive === 1)
      })
    )

    it.scopedLive(
      "a plain exec through node 1 whose client goes away is ended on node 2 at once: its command is killed",
      () =>
        Effect.gen(function* () {
          const cluster = yield* InProcessCluster.make(2)
          const [one, two] = cluster.nodes as [InProcessCluster.Node, InProcessCluster.Node]
          const key = Redacted.value((yield* cluster.store.createWorkspace(WorkspaceName.make("acme"))).apiKey)
          yield* two.attachAgent(key, "far")
          const client = yield* clientOf(one, key)
          // No stdin, no signals: the forwarded call's input ends at once, and its end is not passed on, so node 1 can
          // still send its in-band cancel (a half-closed call could only be reset, 5 s later).
          const pid = yield* Effect.scoped(
            Effect.gen(function* () {
              const events = yield* Stream.toPull(
                client.exec({ machine: "far", argv: ["sh", "-c", "echo $$; exec sleep 30"] })
              )
              const seen: Array<ExecEvent> = []
              return yield* eventually(
                "the command's pid through node 1",
                Effect.map(events, (chunk) => {
                  seen.push(...Chunk.toReadonlyArray(chunk))
                  const out = Buffer.concat(seen.flatMap((e) => (e._tag === "Stdout" ? [e.data] : [])))
                  return /^\d+\n/.test(out.toString()) ? Number.parseInt(out.toString(), 10) : undefined
                }),
                { timeout: "10 seconds", interval: "10 millis" }
              )
            })
          )
          const left = Date.now()
          yield* eventually(
            "the command killed and the session ended on node 2",
            Effect.sync(() => (!Liveness.isRunning(pid) && two.stats.snapshot().servedLive === 0 ? true : undefined)),
            { timeout: "10 seconds", interval: "20 millis" }
          )
          // Well before the 5 s after which a call that was not ended in-band is reset.
          assert.isBelow(Date.now() - left, 3_000)
          assert.deepInclude(one.stats.snapshot(), { forwardedLive: 0, peerErrors: 0 })
        })
    )

    it.scopedLive(
      "a machine that moved to another node is reached on the next call, though its old route was cached",
      () =>
        Effect.gen(function* () {
          const cluster = yield* InProcessCluster.make(3)
          const [one, two, three] = cluster.nodes as [
            InProcessCluster.Node,
            InProcessCluster.Node,
            InProcessCluster.Node
          ]
          const key = Redacted.value((yield* cluster.store.createWorkspace(WorkspaceName.make("acme"))).apiKey)
          // One machine (one identity): its agent on node 2 first, then on node 3.
          const identity = InProcessAgent.identity({ hostname: "far" })
          const attachTo = (node: InProcessCluster.Node) =>
            InProcessAgent.attach(key, identity, { hostname: "far" }).pipe(
              Effect.provide(node.context),
              Effect.provide(ProcessRunner.layer)
            )
          const onTwo = yield* attachTo(two)
          const client = yield* clientOf(one, key)
          const echo = (word: string) =>
            Stream.runCollect(client.exec({ machine: "far", argv: ["echo", word] })).pipe(
              Effect.map((events) =>
                Buffer.concat(
                  Chunk.toReadonlyArray(events).flatMap((e) => (e._tag === "Stdout" ? [e.data] : []))
                ).toString()
              )
            )
          assert.strictEqual(yield* echo("via-two"), "via-two\n")
          yield* onTwo.stop
          yield* eventually(
            "node 2 to release the machine's route",
            Effect.map(cluster.routes.locate(identity.machineId as MachineId), (route) =>
              Option.isNone(route) ? true : undefined
            )
          )
          yield* attachTo(three)
          assert.strictEqual(
            Option.map(yield* cluster.routes.locate(identity.machineId as MachineId), (r) => r.nodeId).pipe(
              Option.getOrUndefined
            ),
            "node-3"
          )
          // Node 1 still has node 2 as the route it found a moment ago: node 2 says offline, node 1 looks again.
          assert.strictEqual(yield* echo("via-three"), "via-three\n")
          yield* settled("no forwarded session live on node 1", () => one.stats.snapshot().forwardedLive === 0)
          assert.deepInclude(one.stats.snapshot(), { forwardedTotal: 3, forwardedLive: 0, peerErrors: 0 })
          assert.deepInclude(three.stats.snapshot(), { servedTotal: 1, servedLive: 0 })
        })
    )

    it.scopedLive("a machine whose node stops answering is reported unavailable, naming the node; counted", () =>
      Effect.gen(function* () {
        const cluster = yield* InProcessCluster.make(2)
        const [one, two] = cluster.nodes as [InProcessCluster.Node, InProcessCluster.Node]
        const key = Redacted.value((yield* cluster.store.createWorkspace(WorkspaceName.make("acme"))).apiKey)
        const far = yield* two.attachAgent(key, "far")
        // The route now points at a node whose lease is live but whose peer port is closed.
        yield* cluster.routes.renewLease({ nodeId: "node-9", peerAddress: "127.0.0.1:1", instance: "node-9-run" })
        yield* cluster.routes.claim(far.machineId, "node-9")
        const client = yield* clientOf(one, key)
        const error = yield* Effect.flip(Stream.runDrain(client.exec({ machine: "far", argv: ["true"] })))
        assert.strictEqual(error._tag === "RelayError" && error.reason, "Unavailable")
        assert.include(error.message, "node-9")
        assert.strictEqual(one.stats.snapshot().peerErrors, 1)
        assert.isTrue(Option.isSome(yield* cluster.routes.locate(far.machineId)))
        // A share-link guest of that machine is told it cannot be reached now, and nothing of the cluster's insides.
        const minted = yield* client.createShare("far", 3600)
        const guest = yield* clientOf(one, minted.token)
        const guestError = yield* Effect.flip(Stream.runDrain(guest.exec({ machine: "far", argv: ["true"] })))
        assert.strictEqual(guestError._tag === "RelayError" && guestError.reason, "Unavailable")
        assert.include(guestError.message, "the relay could not reach this machine just now; try again in a moment")
        for (const internal of ["node-9", "127.0.0.1:1", far.machineId, "peer-address"])
          assert.notInclude(guestError.message, internal)
        assert.strictEqual(one.stats.snapshot().peerErrors, 2)
      })
    )

    it.scopedLive("a node whose cluster secret differs: its refusal is said as such, counted, and logged once", () =>
      Effect.gen(function* () {
        const other = Redacted.make("another-cluster-secret-0123456789abcdef")
        const cluster = yield* InProcessCluster.make(2, { secretOf: (id) => (id === "node-2" ? other : undefined) })
        const [one, two] = cluster.nodes as [InProcessCluster.Node, InProcessCluster.Node]
        const key = Redacted.value((yield* cluster.store.createWorkspace(WorkspaceName.make("acme"))).apiKey)
        yield* two.attachAgent(key, "far")
        const client = yield* clientOf(one, key)
        const logged: Array<string> = []
        const logger = Logger.make(({ message }) => {
          logged.push(Array.isArray(message) ? message.join(" ") : String(message))
        })
        const exec = Effect.flip(Stream.runDrain(client.exec({ machine: "far", argv: ["true"] }))).pipe(
          Effect.provide(Logger.replace(Logger.defaultLogger, logger))
        )
        const error = yield* exec
        assert.include(error.message, "relay node node-2")
        assert.include(error.message, "the relay nodes' cluster secrets differ")
        assert.notInclude(error.message, "clients use the relay's gRPC port")
        yield* exec
        assert.strictEqual(one.stats.snapshot().peerErrors, 2)
        assert.strictEqual(two.stats.snapshot().refused, 2)
        // An in-process client's calls log through its own logger; a gRPC client's, through node 1's.
        const warnings = logged.filter((line) => line.includes("cluster secrets differ"))
        if (via === "in-process") assert.strictEqual(warnings.length, 1, logged.join("\n"))
      })
    )
  })
