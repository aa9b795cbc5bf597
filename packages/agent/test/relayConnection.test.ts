/**
 * The agent's wire edge against a fake relay over real gRPC on 127.0.0.1:0: what the agent cannot read is
 * skipped, an open of an unknown session kind is refused with a lone `SessionExit` (126), and `register` carries
 * the identity (its secret included) and the registered machine. The nodes a cluster names in `Welcome` are tried
 * next, dialed the way the node that named them was reached (TLS with the same CA, or plaintext), each node once
 * however it is spelled, and the rotation over them survives the list shrinking.
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
import * as fs from "node:fs"
import { agentEnv, eventuallyEffect } from "./helpers.js"

/** The test kit's certificate for `localhost` and 127.0.0.1, which is its own CA. */
const fixtures = new URL("../../testkit/fixtures/", import.meta.url).pathname
const certFile = `${fixtures}localhost.crt`
const serverTls = () => ({
  certChain: fs.readFileSync(certFile, "utf8"),
  privateKey: fs.readFileSync(`${fixtures}localhost.key`, "utf8")
})

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

/**
 * A relay that sends `script` on connect (or `script(n, self)` on its n-th connection, from 0, `self` being its own
 * `host:port`), records what the agent sends, and registers whoever asks; over TLS (the test kit's `localhost`
 * certificate) with `tls`.
 */
const fakeRelay = (
  script:
    ReadonlyArray<AgentService.RelayMessage> | ((n: number, self: string) => ReadonlyArray<AgentService.RelayMessage>),
  options: { readonly tls?: boolean } = {}
) =>
  Effect.gen(function* () {
    const received = yield* Queue.unbounded<AgentService.AgentMessage>()
    const registered = yield* Queue.unbounded<AgentService.RegisterRequest>()
    let connections = 0
    let self = ""
    const server = yield* GrpcServer.make({
      host: "127.0.0.1",
      ...(options.tls === true ? { tls: serverTls() } : {}),
      services: [
        GrpcServer.service(AgentService.definition, {
          register: (request) =>
            Effect.as(Queue.offer(registered, request), { machine, workspaceName: "acme" } as const),
          connect: (requests) =>
            Stream.unwrapScoped(
              Effect.as(
                Effect.forkScoped(Stream.runForEach(requests, (m) => Queue.offer(received, m))),
                Stream.concat(
                  Stream.fromIterable(typeof script === "function" ? script(connections++, self) : script),
                  Stream.never
                )
              )
            )
        })
      ],
      shutdownTimeout: "200 millis"
    })
    self = server.address
    return { server, received, registered }
  })

/** A cluster node's `Welcome`, naming `relayAddresses` as where agents reach the live nodes. */
const welcome = (relayAddresses: ReadonlyArray<string>): AgentService.RelayMessage => ({
  _tag: "Welcome",
  machine,
  workspaceName: "acme",
  heartbeatSeconds: 30,
  window: 65_536,
  relayAddresses: relayAddresses as [string, ...Array<string>]
})

/** The first message of a Connect stream to `address`, one node of `server`. */
const firstMessage = (server: string, address: string) =>
  Effect.flatMap(RelayConnection.connect(target(server), address), (connection) => Stream.runHead(connection.incoming))

/** Every address `nextAddress` gives for `server` over `rounds` attempts, each once, sorted. */
const rotation = (server: string, rounds: number) =>
  Effect.map(Effect.replicateEffect(RelayConnection.nextAddress(server), rounds), (all) => [...new Set(all)].sort())

const target = (address: string): RelayConnection.Target => ({ server: address, apiKey: Redacted.make("ck_test") })

describe("relayConnection", () => {
  it.scopedLive("skips what it cannot read and refuses an open of an unknown kind with a lone 126", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay([
        { _tag: "UnknownOpen", sessionId: "s1" },
        { _tag: "Unreadable" },
        { _tag: "Heartbeat", at: 42 }
      ])
      const connection = yield* RelayConnection.connect(target(relay.server.address), relay.server.address)
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

  it.scopedLive(
    "a node reached over TLS names its peers: they are dialed over TLS with the same CA, each node once",
    () =>
      Effect.gen(function* () {
        // The CA as `CMDOP_TLS_CA` gives it: the agent's only TLS setting is the https:// of its server.
        yield* agentEnv({ CMDOP_TLS_CA: certFile })
        const b = yield* fakeRelay([{ _tag: "Heartbeat", at: 7 }], { tls: true })
        const bAddress = b.server.address
        const a = yield* fakeRelay((_, self) => [welcome([self, bAddress])], { tls: true })
        const server = `https://127.0.0.1:${a.server.port}`
        assert.deepStrictEqual(yield* rotation(server, 2), [server])

        const first = yield* Effect.scoped(firstMessage(server, server))
        assert.strictEqual(Option.getOrThrow(first)._tag, "Welcome")
        // Node A's own hint is the node the agent was given (spelled another way), not a second, plaintext, entry.
        assert.deepStrictEqual(yield* rotation(server, 4), [server, `https://${bAddress}`].sort())
        assert.deepStrictEqual(RelayConnection.candidates(server), [server, `https://${bAddress}`])
        // And node B is reached there, over TLS, as when node A is dead.
        const viaHint = yield* Effect.scoped(firstMessage(server, `https://${bAddress}`))
        assert.deepStrictEqual(viaHint, Option.some<AgentLink.RelayMessage>({ _tag: "Heartbeat", at: 7 }))
      })
  )

  it.scopedLive("a node reached in plaintext names peers that are dialed in plaintext", () =>
    Effect.gen(function* () {
      const b = yield* fakeRelay([{ _tag: "Heartbeat", at: 8 }])
      const a = yield* fakeRelay((_, self) => [welcome([self, b.server.address])])
      // A list mixing the two spellings: each node is dialed the way the address that names it says.
      const server = `${a.server.address}, http://127.0.0.1:1`
      yield* Effect.scoped(firstMessage(server, a.server.address))
      assert.deepStrictEqual(
        yield* rotation(server, 6),
        [a.server.address, "http://127.0.0.1:1", b.server.address].sort()
      )
      assert.deepStrictEqual(RelayConnection.candidates(server), [
        a.server.address,
        "http://127.0.0.1:1",
        b.server.address
      ])
      const viaHint = yield* Effect.scoped(firstMessage(server, b.server.address))
      assert.deepStrictEqual(viaHint, Option.some<AgentLink.RelayMessage>({ _tag: "Heartbeat", at: 8 }))
    })
  )

  it.scopedLive("when a later Welcome names fewer nodes, the next attempt is still one of them", () =>
    Effect.gen(function* () {
      // Three nodes, then the third left the cluster: the second Welcome names two.
      const a = yield* fakeRelay((n, self) => [welcome([self, "127.0.0.1:2", ...(n === 0 ? ["127.0.0.1:3"] : [])])])
      const server = `grpc://127.0.0.1:${a.server.port}`
      yield* Effect.scoped(firstMessage(server, server))
      assert.deepStrictEqual(yield* rotation(server, 6), ["127.0.0.1:2", "127.0.0.1:3", server])
      // Move the rotation to the last of the three.
      yield* eventuallyEffect(
        "the rotation at the third node",
        Effect.map(RelayConnection.nextAddress(server), (address) => (address === "127.0.0.1:2" ? true : undefined))
      )
      yield* Effect.scoped(firstMessage(server, server))
      assert.deepStrictEqual(RelayConnection.candidates(server), [server, "127.0.0.1:2"])
      assert.deepStrictEqual(yield* rotation(server, 3), ["127.0.0.1:2", server])
    })
  )
})
