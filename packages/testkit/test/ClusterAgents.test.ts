/**
 * Agents across nodes: a real agent daemon given several relay nodes (`--server a,b`) connects through one; when
 * that node stops, it comes back through another under its usual backoff, and a PTY session opened before is
 * adopted by the new node and reattached with its screen — through a third node, over the peer port.
 */
import * as AgentDaemon from "@cmdop/agent/AgentDaemon"
import * as AgentIdentity from "@cmdop/agent/AgentIdentity"
import * as DaemonCredential from "@cmdop/agent/DaemonCredential"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import type { MachineId } from "@cmdop/domain/Machine"
import * as OAuthSession from "@cmdop/domain/OAuthSession"
import { RelayClient } from "@cmdop/domain/RelayClient"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as RelayClientInProcess from "@cmdop/relay/RelayClientInProcess"
import { eventually } from "@cmdop/test-helpers/Eventually"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as InProcessCluster from "@cmdop/testkit/InProcessCluster"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"

const clientOf = (node: InProcessCluster.Node, key: string) =>
  Effect.map(
    Layer.build(RelayClientInProcess.layer(Redacted.make(key)).pipe(Layer.provide(Layer.succeedContext(node.context)))),
    (c) => Context.get(c, RelayClient)
  )

/** A real agent daemon in its own HOME, dialing `server` (one address or a comma-separated list). */
const startAgent = (key: string, hostname: string, server: string) =>
  Effect.gen(function* () {
    const home = yield* TempHome.make("cmdop-agent-")
    const env = Layer.mergeAll(NodeFileSystem.layer, CmdopPaths.layerHome(home), ProcessRunner.layer)
    const credential = DaemonCredential.layer.pipe(Layer.provide(OAuthSession.layerEmpty), Layer.provide(env))
    const identity = yield* AgentIdentity.loadOrCreate({ hostname }).pipe(Effect.provide(env))
    yield* AgentDaemon.run({
      overrides: { apiKey: Redacted.make(key), server },
      backoff: { base: "50 millis", cap: "500 millis" }
    }).pipe(Effect.provide(Layer.merge(env, credential)), Logger.withMinimumLogLevel(LogLevel.None), Effect.forkScoped)
    return identity.machine_id as MachineId
  })

const outputText = (events: ReadonlyArray<{ readonly _tag: string }>) =>
  Buffer.concat(
    events.flatMap((e) => (e._tag === "Output" ? [(e as unknown as { data: Uint8Array }).data] : []))
  ).toString("utf8")

describe("agents across nodes", () => {
  it.scopedLive("an agent comes back through another node when its node stops; its PTY session is reattached", () =>
    Effect.gen(function* () {
      const cluster = yield* InProcessCluster.make(3)
      const [one, two, three] = cluster.nodes as [InProcessCluster.Node, InProcessCluster.Node, InProcessCluster.Node]
      const key = Redacted.value((yield* cluster.store.createWorkspace(WorkspaceName.make("acme"))).apiKey)
      const machineId = yield* startAgent(key, "roamer", `${two.grpcAddress}, ${three.grpcAddress}`)
      const holder = (exclude?: string) =>
        Effect.map(cluster.routes.locate(machineId), (route) =>
          Option.isSome(route) && route.value.nodeId !== exclude ? route.value.nodeId : undefined
        )
      const first = yield* eventually("the agent online through node 2 or 3", holder(), {
        timeout: "15 seconds",
        interval: "20 millis"
      })
      assert.include(["node-2", "node-3"], first)

      // A shell opened through node 1 (forwarded), then left running.
      const client = yield* clientOf(one, key)
      const input = yield* Queue.unbounded<{ readonly _tag: "Data"; readonly data: Uint8Array }>()
      const events = yield* Stream.toPull(
        client.attach({ machine: "roamer", cols: 80, rows: 24, command: ["sh"] }, Stream.fromQueue(input))
      )
      const head = Chunk.toReadonlyArray(yield* events)[0]
      if (head?._tag !== "Attached") return assert.fail(`expected Attached, got ${head?._tag}`)
      yield* Queue.offer(input, { _tag: "Data", data: Buffer.from("echo before-$((20+3))\n") })
      const seen: Array<{ readonly _tag: string }> = []
      yield* eventually(
        "the shell's answer",
        Effect.map(events, (chunk) => {
          seen.push(...Chunk.toReadonlyArray(chunk))
          return outputText(seen).includes("before-23") ? true : undefined
        }),
        { timeout: "10 seconds", interval: "10 millis" }
      )
      yield* Queue.shutdown(input)

      // The node holding the agent goes away; the agent tries the next node of its list.
      yield* (first === "node-2" ? two : three).stop
      const second = yield* eventually("the agent back through the other node", holder(first), {
        timeout: "20 seconds",
        interval: "20 millis"
      })
      assert.notStrictEqual(second, first)

      const again = yield* Stream.toPull(
        client.attach({ machine: "roamer", cols: 80, rows: 24, sessionId: head.sessionId }, Stream.never)
      )
      const replayed: Array<{ readonly _tag: string }> = []
      yield* eventually(
        "the session's screen, replayed through node 1 from its new node",
        Effect.map(again, (chunk) => {
          replayed.push(...Chunk.toReadonlyArray(chunk))
          return outputText(replayed).includes("before-23") ? true : undefined
        }),
        { timeout: "10 seconds", interval: "10 millis" }
      )
    })
  )
})
