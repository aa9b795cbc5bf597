/**
 * A relay node's part in a cluster of nodes on one database: its peer port (`PeerServer`, over the node's local
 * core) and the core its clients use, which forwards calls for machines held by other nodes (`forwardCore`), with
 * the counters `/metrics` reads (`PeerStats`). The node's lease and the routes of its agents are recorded in
 * `MachineRoutes` by the code that accepts agent streams; this layer only reads them.
 */
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { RelayCore } from "../RelayCore.js"
import { ClusterNode } from "./ClusterNode.js"
import * as ForwardCore from "./forwardCore.js"
import { MachineRoutes } from "./MachineRoutes.js"
import * as PeerClients from "./PeerClients.js"
import * as PeerSecret from "./PeerSecret.js"
import * as PeerServer from "./PeerServer.js"
import { Counters, PeerStats } from "./PeerStats.js"

export interface Options {
  readonly nodeId: string
  /** The secret every node of the cluster shares (at least `PeerSecret.MIN_LENGTH` characters). */
  readonly secret: Redacted.Redacted<string>
  /** Interface the peer port listens on. Default 127.0.0.1 (use the node's cluster-network address). */
  readonly host?: string
  /** The peer port; 0 picks a free one. Default 0. */
  readonly port?: number
}

/** Where this node's peer port listens (`host:port`), for its lease. */
export class PeerEndpoint extends Context.Tag("@cmdop/relay/PeerEndpoint")<
  PeerEndpoint,
  { readonly address: string }
>() {}

export class PeerNodeError extends Data.TaggedError("PeerNodeError")<{ readonly message: string }> {}

/**
 * Starts the peer port over the `RelayCore` in context and returns the forwarding core, the port's address and the
 * counters; the port closes with the scope.
 */
export const make = (
  options: Options
): Effect.Effect<
  { readonly core: RelayCore["Type"]; readonly address: string; readonly counters: Counters },
  PeerNodeError,
  RelayCore | MachineRoutes | Scope.Scope
> =>
  Effect.gen(function* () {
    const problem = PeerSecret.problem(options.secret)
    if (problem !== undefined) return yield* new PeerNodeError({ message: problem })
    if (options.nodeId.trim() === "")
      return yield* new PeerNodeError({ message: "the node id is empty: give each node a name of its own (--node-id)" })
    const local = yield* RelayCore
    const routes = yield* MachineRoutes
    // The cluster node's view (`/healthz`, `/metrics`) counts forwarded sessions and peer errors too, when present.
    const node = yield* Effect.serviceOption(ClusterNode)
    const counters = new Counters(
      Option.isNone(node)
        ? undefined
        : {
            forwarded: () => Effect.runSync(node.value.countForwarded),
            peerError: () => Effect.runSync(node.value.countPeerError)
          }
    )
    const server = yield* GrpcServer.make({
      services: [PeerServer.service(local, options.secret, counters)],
      host: options.host ?? "127.0.0.1",
      port: options.port ?? 0
    }).pipe(
      Effect.mapError(
        (e) =>
          new PeerNodeError({
            message: `the peer port: ${e.message} (pick another with --peer-port; without it the peer port is the gRPC port + 1)`
          })
      )
    )
    const clients = yield* PeerClients.make
    const core = ForwardCore.wrap(local, { nodeId: options.nodeId, secret: options.secret, routes, clients, counters })
    return { core, address: server.address, counters }
  })

/** The forwarding `RelayCore`, the peer port's address and the counters, over the local `RelayCore`. */
export const layer = (
  options: Options
): Layer.Layer<RelayCore | PeerEndpoint | PeerStats, PeerNodeError, RelayCore | MachineRoutes> =>
  Layer.scopedContext(
    Effect.map(make(options), ({ address, core, counters }) =>
      Context.make(RelayCore, core).pipe(
        Context.add(PeerEndpoint, { address }),
        Context.add(PeerStats, { snapshot: () => counters.snapshot() })
      )
    )
  )

/**
 * `relay serve` in cluster mode: the peer port over `local`'s core (on `host`, at the node's peer port), and
 * `local` with the forwarding core in its place, for everything clients reach (gRPC, the browser terminal, share
 * pages). The cluster node's counters (`/metrics`, `/healthz`) hear of forwarded sessions and peer errors.
 */
export const inCluster = <R>(
  local: Context.Context<R | RelayCore>,
  cluster: Context.Context<MachineRoutes | ClusterNode>,
  host: string
): Effect.Effect<Context.Context<R | RelayCore>, PeerNodeError, Scope.Scope> => {
  const { nodeId, peerPort, secret } = Context.get(cluster, ClusterNode).config
  return make({ nodeId, secret, host, port: peerPort }).pipe(
    Effect.provide(Context.merge(local, cluster)),
    Effect.map(({ core }) => Context.add(local, RelayCore, core))
  )
}
