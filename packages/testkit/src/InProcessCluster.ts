/**
 * Several relay nodes in one process, as a cluster: each node its own `RelayCore` over the shared store as a
 * cluster node sees it (`ClusterStore`: liveness from the routing table, routes claimed as agents connect), its
 * peer port on 127.0.0.1 (real gRPC between nodes, `PeerNode`) and its client port (real gRPC, `RelayGrpc`), all
 * on one memory store, one share service and one `MachineRoutes` memory instance. A node stops on demand (its
 * ports close, its lease and routes go, as when a dead node's lease lapses).
 */
import { randomUUID } from "node:crypto"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import * as ClusterStore from "@cmdop/relay/cluster/ClusterStore"
import * as MachineRoutes from "@cmdop/relay/cluster/MachineRoutes"
import * as PeerNode from "@cmdop/relay/cluster/PeerNode"
import { PeerStats } from "@cmdop/relay/cluster/PeerStats"
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayGrpc from "@cmdop/relay/RelayGrpc"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import type { MachineId } from "@cmdop/domain/Machine"
import { ShareService } from "@cmdop/domain/ShareService"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as InProcessAgent from "./InProcessAgent.js"

/** The secret the in-process nodes share. */
export const secret = Redacted.make("in-process-cluster-secret-0123456789abcdef")

export interface Node {
  readonly nodeId: string
  readonly peerAddress: string
  /** The node's client port (`ClientService`, `AgentService`): where agents and gRPC clients dial it. */
  readonly grpcAddress: string
  /** The node's forwarding core (what its clients use), with its store and the share service. */
  readonly context: Context.Context<RelayCore.RelayCore | RelayStore.RelayStore | ShareService>
  readonly core: RelayCore.RelayCore["Type"]
  readonly stats: PeerStats["Type"]
  /** Attaches an in-process agent to this node (its route is claimed as it connects). */
  readonly attachAgent: (
    key: string,
    hostname: string
  ) => Effect.Effect<{ readonly machineId: MachineId; readonly stop: Effect.Effect<void> }, unknown, Scope.Scope>
  /** Stops the node: its ports close, its streams end, its lease and routes go. */
  readonly stop: Effect.Effect<void>
}

export interface Cluster {
  readonly nodes: ReadonlyArray<Node>
  readonly store: RelayStore.RelayStore["Type"]
  readonly routes: MachineRoutes.MachineRoutes["Type"]
}

/**
 * `count` nodes named `node-1`…; every node's lease is renewed once (the routes' lease outlives a test). Each node
 * has the shared `secret` unless `secretOf` gives it another (nodes whose secrets differ).
 */
export const make = (
  count: number,
  options: { readonly secretOf?: (nodeId: string) => Redacted.Redacted<string> | undefined } = {}
) =>
  Effect.gen(function* () {
    const shared = yield* Layer.build(
      Layer.mergeAll(
        ShareServiceLive.layer.pipe(Layer.provideMerge(RelayStore.layerMemory)),
        MachineRoutes.layerMemory(10 * 60_000)
      )
    )
    const store = Context.get(shared, RelayStore.RelayStore)
    const routes = Context.get(shared, MachineRoutes.MachineRoutes)
    const parent = yield* Effect.scope
    const nodes = yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => `node-${i + 1}`),
      (nodeId) =>
        Effect.gen(function* () {
          const scope = yield* Scope.fork(parent, ExecutionStrategy.sequential)
          const nodeStore = Layer.succeed(RelayStore.RelayStore, ClusterStore.make(store, routes, nodeId))
          const built = yield* Layer.buildWithScope(
            PeerNode.layer({ nodeId, secret: options.secretOf?.(nodeId) ?? secret }).pipe(
              Layer.provideMerge(RelayCore.layer({ server: nodeId })),
              Layer.provideMerge(nodeStore),
              Layer.provideMerge(Layer.succeedContext(shared))
            ),
            scope
          )
          const peerAddress = Context.get(built, PeerNode.PeerEndpoint).address
          const lease = { nodeId, peerAddress, instance: randomUUID() }
          yield* routes.renewLease(lease)
          yield* Scope.addFinalizer(scope, Effect.ignore(routes.dropLease(lease)))
          const core = Context.get(built, RelayCore.RelayCore)
          const context = Context.merge(shared, Context.make(RelayCore.RelayCore, core)).pipe(
            Context.add(RelayStore.RelayStore, Context.get(built, RelayStore.RelayStore))
          )
          const services = yield* RelayGrpc.services().pipe(Effect.provide(context))
          const grpc = yield* GrpcServer.make({
            services,
            host: "127.0.0.1",
            port: 0,
            shutdownTimeout: "100 millis"
          }).pipe(Scope.extend(scope))
          const node: Node = {
            nodeId,
            peerAddress,
            grpcAddress: grpc.address,
            context,
            core,
            stats: Context.get(built, PeerStats),
            attachAgent: (key, hostname) =>
              Effect.map(
                InProcessAgent.attach(key, InProcessAgent.identity({ hostname }), { hostname }).pipe(
                  Effect.provide(context),
                  Effect.provide(ProcessRunner.layer)
                ),
                (agent) => ({ machineId: agent.machineId as MachineId, stop: agent.stop })
              ),
            stop: Scope.close(scope, Exit.void)
          }
          return node
        })
    )
    return { nodes, store, routes } satisfies Cluster
  })
