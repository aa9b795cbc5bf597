/**
 * Agents across nodes: a real agent daemon given several relay nodes (`--server a,b`) connects through one; when
 * that node stops, it comes back through another under its usual backoff, and a PTY session opened before is
 * adopted by the new node and reattached with its screen — through a third node, over the peer port.
 */
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayClientInProcess from "@cmdop/relay/RelayClientInProcess"
import { eventually } from "@cmdop/test-helpers/Eventually"
import * as InProcessCluster from "@cmdop/testkit/InProcessCluster"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { startAgent } from "./daemonAgent.js"

const clientOf = (node: InProcessCluster.Node, key: string) =>
  Effect.provide(RelayClientInProcess.make(Redacted.make(key)), node.context)

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
