/**
 * The agent's wire edge against a fake relay over real gRPC on 127.0.0.1:0: what the agent cannot read is
 * skipped, an open of an unknown session kind is refused with a lone `SessionExit` (126), and `register` carries
 * the identity (its secret included) and the registered machine.
 */
import { assert, describe, it } from "@effect/vitest"
import type * as AgentLink from "@cmdop/domain/AgentLink"
import { Machine, MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import * as AgentService from "@cmdop/protocol/AgentService"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as RelayConnection from "../src/internal/relayConnection.js"

const machine = new Machine({
  id: MachineId.make("0b9f5c1e-8a4d-4c7e-9f21-3d6b2a7e5c10"),
  workspaceId: WorkspaceId.make("ws"),
  hostname: "box",
  name: "box",
  os: "linux",
  agentVersion: "1.0.0",
  online: true
})

const identity: AgentLink.MachineIdentity = {
  machineId: machine.id,
  machineSecret: Redacted.make("s3cret"),
  hostname: "box",
  name: "box",
  os: "linux",
  agentVersion: "1.0.0"
}

/** A relay that sends `script` on connect, records what the agent sends, and registers whoever asks. */
const fakeRelay = (script: ReadonlyArray<AgentService.RelayMessage>) =>
  Effect.gen(function* () {
    const received = yield* Queue.unbounded<AgentService.AgentMessage>()
    const registered = yield* Queue.unbounded<AgentService.RegisterRequest>()
    const server = yield* GrpcServer.make({
      host: "127.0.0.1",
      services: [
        GrpcServer.service(AgentService.definition, {
          register: (request) =>
            Effect.as(Queue.offer(registered, request), { machine, workspaceName: "acme" } as const),
          connect: (requests) =>
            Stream.unwrapScoped(
              Effect.as(
                Effect.forkScoped(Stream.runForEach(requests, (m) => Queue.offer(received, m))),
                Stream.concat(Stream.fromIterable(script), Stream.never)
              )
            )
        })
      ],
      shutdownTimeout: "200 millis"
    })
    return { server, received, registered }
  })

const target = (address: string): RelayConnection.Target => ({ server: address, apiKey: Redacted.make("ck_test") })

describe("relayConnection", () => {
  it.scopedLive("skips what it cannot read and refuses an open of an unknown kind with a lone 126", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay([
        { _tag: "UnknownOpen", sessionId: "s1" },
        { _tag: "Unreadable" },
        { _tag: "Heartbeat", at: 42 }
      ])
      const connection = yield* RelayConnection.connect(target(relay.server.address))
      const first = yield* Stream.runHead(connection.incoming)
      assert.deepStrictEqual(first, Option.some<AgentLink.RelayMessage>({ _tag: "Heartbeat", at: 42 }))
      const refusal = yield* Queue.take(relay.received)
      assert.deepStrictEqual(refusal, {
        _tag: "SessionExit",
        sessionId: "s1",
        exitCode: 126,
        timedOut: false,
        error: "the session asks for neither exec nor pty",
        durationMs: 0
      })
      assert.strictEqual(yield* Queue.size(relay.received), 0)
    })
  )

  it.scopedLive("register sends the identity with its secret and reads the registered machine", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay([])
      const registered = yield* RelayConnection.register(target(relay.server.address), identity, "10 seconds")
      assert.deepStrictEqual(registered, { machine, workspaceName: "acme" })
      const request = yield* Queue.take(relay.registered)
      assert.strictEqual(request.identity?.machineId, identity.machineId)
      assert.strictEqual(request.identity && Redacted.value(request.identity.machineSecret), "s3cret")
    })
  )
})
