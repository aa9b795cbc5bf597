/**
 * One relay node of a cluster, for `bench/cluster.mjs`: the relay store and routing table on PostgreSQL, liveness
 * from the routing table (`ClusterStore`), the node's lease (`ClusterNode`), its peer port and forwarding core
 * (`PeerNode`) and its client gRPC port (`RelayGrpc`). No HTTP endpoint: the benchmark needs none.
 *
 * Run as `node cluster-node.mjs <postgres url> <node id> <grpc port> <peer port> [<workspace to create>]` with the
 * cluster secret in `CMDOP_CLUSTER_SECRET`. Prints one JSON line once it listens:
 * `{ "nodeId", "grpc", "peer", "key"? }` (`key`: the created workspace's API key).
 */
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import * as ClusterNode from "@cmdop/relay/cluster/ClusterNode"
import * as ClusterStore from "@cmdop/relay/cluster/ClusterStore"
import * as MachineRoutes from "@cmdop/relay/cluster/MachineRoutes"
import * as MachineRoutesPg from "@cmdop/relay/cluster/MachineRoutesPg"
import * as PeerNode from "@cmdop/relay/cluster/PeerNode"
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayGrpc from "@cmdop/relay/RelayGrpc"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"

const [url, nodeId, grpcPort, peerPort, workspace] = process.argv.slice(2)
const secretText = process.env["CMDOP_CLUSTER_SECRET"]
if (url === undefined || nodeId === undefined || grpcPort === undefined || peerPort === undefined || !secretText) {
  process.stderr.write(
    "usage: CMDOP_CLUSTER_SECRET=… cluster-node <postgres url> <node id> <grpc port> <peer port> [workspace]\n"
  )
  process.exit(2)
}
const secret = Redacted.make(secretText)

const program = Effect.gen(function* () {
  const base = yield* Layer.build(
    Layer.merge(RelayStore.layerPostgres({ url }), MachineRoutesPg.layerPostgres({ url: Redacted.make(url) }))
  )
  const routes = Context.get(base, MachineRoutes.MachineRoutes)
  const store = ClusterStore.make(Context.get(base, RelayStore.RelayStore), routes, nodeId)
  const key =
    workspace === undefined
      ? undefined
      : Redacted.value((yield* store.createWorkspace(WorkspaceName.make(workspace))).apiKey)
  const server = `127.0.0.1:${grpcPort}`
  const node = yield* Layer.build(
    PeerNode.layer({ nodeId, secret, port: Number(peerPort) }).pipe(
      Layer.provideMerge(RelayCore.layer({ server })),
      Layer.provideMerge(ShareServiceLive.layer),
      Layer.provideMerge(Layer.succeed(RelayStore.RelayStore, store)),
      Layer.provide(Layer.succeedContext(base))
    )
  )
  const peer = Context.get(node, PeerNode.PeerEndpoint).address
  yield* Layer.build(
    ClusterNode.layer({ nodeId, peerAddress: peer, peerPort: Number(peerPort), secret }).pipe(
      Layer.provide(Layer.succeedContext(base))
    )
  )
  const services = yield* RelayGrpc.services().pipe(Effect.provide(node))
  const grpc = yield* GrpcServer.make({ services, host: "127.0.0.1", port: Number(grpcPort) })
  process.stdout.write(`${JSON.stringify({ nodeId, grpc: grpc.address, peer, ...(key ? { key } : {}) })}\n`)
  return yield* Effect.never
})

Effect.runFork(
  Effect.scoped(program).pipe(
    Effect.tapErrorCause((cause) => Effect.sync(() => process.stderr.write(`cluster-node ${nodeId}: ${cause}\n`))),
    Logger.withMinimumLogLevel(LogLevel.Warning)
  )
).addObserver(() => process.exit(1))
