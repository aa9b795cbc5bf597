/**
 * Several relay nodes in one process, as a cluster: each node its own `RelayCore` with its peer port on 127.0.0.1
 * (real gRPC between nodes, `PeerNode`), all on one store, one share service and one `MachineRoutes` memory
 * instance. Agents attach to the node of the test's choice (`InProcessAgent`) and the node records their route, as
 * a cluster-mode node does when it accepts an agent's stream.
 */
import * as MachineRoutes from "@cmdop/relay/cluster/MachineRoutes"
import * as PeerNode from "@cmdop/relay/cluster/PeerNode"
import { PeerStats } from "@cmdop/relay/cluster/PeerStats"
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import type { MachineId } from "@cmdop/domain/Machine"
import { ShareService } from "@cmdop/domain/ShareService"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as InProcessAgent from "./InProcessAgent.js"

/** The secret the in-process nodes share. */
export const secret = Redacted.make("in-process-cluster-secret-0123456789abcdef")

export interface Node {
  readonly nodeId: string
  readonly peerAddress: string
  /** The node's forwarding core (what its clients use); its context also holds the store and share service. */
  readonly context: Context.Context<RelayCore.RelayCore | RelayStore.RelayStore | ShareService>
  readonly core: RelayCore.RelayCore["Type"]
  readonly stats: PeerStats["Type"]
  /** Attaches an in-process agent to this node and records its route here. */
  readonly attachAgent: (
    key: string,
    hostname: string
  ) => Effect.Effect<{ readonly machineId: MachineId; readonly stop: Effect.Effect<void> }, unknown, Scope.Scope>
}

export interface Cluster {
  readonly nodes: ReadonlyArray<Node>
  readonly store: RelayStore.RelayStore["Type"]
  readonly routes: MachineRoutes.MachineRoutes["Type"]
}

/** `count` nodes named `node-1`…; every node's lease is renewed once (the routes' lease outlives a test). */
export const make = (count: number) =>
  Effect.gen(function* () {
    const shared = yield* Layer.build(
      Layer.mergeAll(
        ShareServiceLive.layer.pipe(Layer.provideMerge(RelayStore.layerMemory)),
        MachineRoutes.layerMemory(10 * 60_000)
      )
    )
    const store = Context.get(shared, RelayStore.RelayStore)
    const routes = Context.get(shared, MachineRoutes.MachineRoutes)
    // Every node is up before any agent connects: a starting node marks all machines offline.
    const nodes = yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => `node-${i + 1}`),
      (nodeId) =>
        Effect.gen(function* () {
          const built = yield* Layer.build(
            PeerNode.layer({ nodeId, secret }).pipe(
              Layer.provide(RelayCore.layer({ server: nodeId })),
              Layer.provideMerge(Layer.succeedContext(shared))
            )
          )
          const peerAddress = Context.get(built, PeerNode.PeerEndpoint).address
          yield* routes.renewLease({ nodeId, peerAddress })
          const context = Context.merge(
            shared,
            Context.make(RelayCore.RelayCore, Context.get(built, RelayCore.RelayCore))
          )
          const node: Node = {
            nodeId,
            peerAddress,
            context,
            core: Context.get(built, RelayCore.RelayCore),
            stats: Context.get(built, PeerStats),
            attachAgent: (key, hostname) =>
              Effect.gen(function* () {
                const agent = yield* InProcessAgent.attach(key, InProcessAgent.identity({ hostname }), {
                  hostname
                }).pipe(Effect.provide(context))
                const machineId = agent.machineId as MachineId
                const epoch = yield* routes.claim(machineId, nodeId)
                return {
                  machineId,
                  stop: Effect.zipRight(agent.stop, Effect.ignore(routes.release(machineId, nodeId, epoch)))
                }
              })
          }
          return node
        })
    )
    return { nodes, store, routes } satisfies Cluster
  })
