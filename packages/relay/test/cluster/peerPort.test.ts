/**
 * The peer port is for nodes only: a call without the cluster secret, or with a wrong one, is refused
 * (UNAUTHENTICATED, counted) before anything is read; the client port does not serve the peer service at all; a
 * node refuses to start with a guessable secret.
 */
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import * as PeerService from "@cmdop/protocol/PeerService"
import * as MachineRoutes from "@cmdop/relay/cluster/MachineRoutes"
import * as PeerNode from "@cmdop/relay/cluster/PeerNode"
import * as PeerSecret from "@cmdop/relay/cluster/PeerSecret"
import { PeerStats } from "@cmdop/relay/cluster/PeerStats"
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayGrpc from "@cmdop/relay/RelayGrpc"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

const secret = Redacted.make("peer-port-test-secret-0123456789abcdefghij")

const local = RelayCore.layer({ server: "node-1" }).pipe(
  Layer.provideMerge(ShareServiceLive.layer),
  Layer.provideMerge(RelayStore.layerMemory)
)

const node = Effect.gen(function* () {
  const context = yield* Layer.build(
    PeerNode.layer({ nodeId: "node-1", secret }).pipe(
      Layer.provideMerge(local),
      Layer.provide(MachineRoutes.layerMemory())
    )
  )
  const store = Context.get(context, RelayStore.RelayStore)
  const key = (yield* store.createWorkspace(WorkspaceName.make("acme"))).apiKey
  const caller = yield* Context.get(context, RelayCore.RelayCore).authenticate(key)
  return {
    address: Context.get(context, PeerNode.PeerEndpoint).address,
    stats: Context.get(context, PeerStats),
    request: { _tag: "ListSessions", caller, fromNode: "node-2", machine: "box" } as const,
    context
  }
})

describe("peer port", () => {
  it.scopedLive("refuses a call without the cluster secret or with a wrong one, and counts it", () =>
    Effect.gen(function* () {
      const { address, request, stats } = yield* node
      const peer = yield* GrpcClient.make(PeerService.definition, { address })
      const none = yield* Effect.flip(peer.unary("listSessions", request))
      assert.strictEqual(none.code, 16) // UNAUTHENTICATED
      assert.include(none.details, "cluster secret")
      const wrong = yield* Effect.flip(
        peer.unary("listSessions", request, {
          metadata: PeerSecret.metadata(Redacted.make(Redacted.value(secret).replace("peer", "beer")))
        })
      )
      assert.strictEqual(wrong.code, 16)
      assert.deepInclude(stats.snapshot(), { refused: 2, servedTotal: 0 })
      // With the secret, the node answers for the caller (here: the machine does not exist).
      const served = yield* Effect.flip(peer.unary("listSessions", request, { metadata: PeerSecret.metadata(secret) }))
      assert.strictEqual(served.code, 5) // NOT_FOUND: the node's own answer
      assert.deepInclude(stats.snapshot(), { refused: 2, servedTotal: 1 })
    })
  )

  it.scopedLive("EndGuestSessions: refused without the secret; with it, a link this node has no session of: 0", () =>
    Effect.gen(function* () {
      const { address, stats } = yield* node
      const peer = yield* GrpcClient.make(PeerService.definition, { address })
      const question = { shareId: "00000000-0000-4000-8000-000000000000", fromNode: "node-2" }
      const refused = yield* Effect.flip(peer.unary("endGuestSessions", question))
      assert.strictEqual(refused.code, 16) // UNAUTHENTICATED
      assert.deepInclude(stats.snapshot(), { refused: 1, servedTotal: 0 })
      const answer = yield* peer.unary("endGuestSessions", question, { metadata: PeerSecret.metadata(secret) })
      assert.deepStrictEqual(answer, { sessionsEnded: 0 })
    })
  )

  it.scopedLive("the client port does not serve the peer service, secret or not", () =>
    Effect.gen(function* () {
      const { context, request } = yield* node
      const services = yield* RelayGrpc.services().pipe(Effect.provide(context))
      const clientPort = yield* GrpcServer.make({ services, host: "127.0.0.1", port: 0 })
      const peer = yield* GrpcClient.make(PeerService.definition, { address: clientPort.address })
      const error = yield* Effect.flip(peer.unary("listSessions", request, { metadata: PeerSecret.metadata(secret) }))
      assert.strictEqual(error.code, 12) // UNIMPLEMENTED
    })
  )

  it.scopedLive("a node will not start with a short secret or no node id, and says how to fix it", () =>
    Effect.gen(function* () {
      const start = (options: PeerNode.Options) =>
        Effect.exit(
          Layer.build(PeerNode.layer(options).pipe(Layer.provide(local), Layer.provide(MachineRoutes.layerMemory())))
        )
      const short = yield* start({ nodeId: "n", secret: Redacted.make("hunter2") })
      assert.isTrue(Exit.isFailure(short))
      if (Exit.isFailure(short)) assert.include(String(short.cause), "openssl rand")
      const nameless = yield* start({ nodeId: " ", secret })
      assert.isTrue(Exit.isFailure(nameless))
      if (Exit.isFailure(nameless)) assert.include(String(nameless.cause), "--node-id")
    })
  )
})
