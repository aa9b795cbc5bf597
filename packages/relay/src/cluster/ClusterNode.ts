/**
 * This relay as a node of a cluster: its identity (node id, the peer address the others reach it at, the shared
 * secret of the peer port), its lease in the shared `MachineRoutes` (taken at start, renewed on a schedule, given
 * up on a clean shutdown), its latest view of the cluster (for `/healthz`), and the per-node counters `/metrics`
 * reports (sessions forwarded to other nodes, failed peer calls; the peer service counts them).
 *
 * Node ids must be unique across the live nodes: every run renews its lease under a fresh instance token, and a
 * node starting with an id whose lease is live under another token refuses (`NodeIdInUse`) — unless that lease
 * names this node's own peer address, which is a restart of this node (`kill -9`, then systemd): it waits for the
 * dead run's lease to lapse, then takes the id over, clearing the routes that run left (its streams died with it).
 *
 * The nodes must share one cluster secret: each records a fingerprint of its own with its lease, and a node whose
 * secret differs from the live nodes' refuses to start (`ClusterSecretMismatch`). A first node, or one whose live
 * peers recorded no fingerprint (earlier versions), starts.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import { randomUUID } from "node:crypto"
import { defaultLeaseMs, MachineRoutes, type MachineRoutesError, NodeIdInUse, type NodeInfo } from "./MachineRoutes.js"
import * as PeerSecret from "./PeerSecret.js"

/** The live nodes of the cluster use another cluster secret than this node's: it would fail every call to them. */
export class ClusterSecretMismatch extends Data.TaggedError("ClusterSecretMismatch")<{
  readonly nodeId: string
  /** The live nodes whose recorded secret differs, by node id. */
  readonly others: ReadonlyArray<string>
}> {
  override get message(): string {
    return (
      `the cluster secret of node ${this.nodeId} differs from the one the live ` +
      `${this.others.length === 1 ? "node" : "nodes"} ${this.others.join(", ")} ${this.others.length === 1 ? "uses" : "use"}: give every node the same --cluster-secret (or CMDOP_CLUSTER_SECRET); to change ` +
      "it, stop every node first"
    )
  }
}

/**
 * A node started with the peer address another live node registered: forwarded calls for either node's machines
 * would reach one of them only (the other's machines read as offline there), so it is refused at start.
 */
export class PeerAddressInUse extends Data.TaggedError("PeerAddressInUse")<{
  readonly nodeId: string
  readonly peerAddress: string
  /** The live node that registered it. */
  readonly holder: string
}> {
  override get message(): string {
    return (
      `--peer-address ${this.peerAddress} of node ${this.nodeId} is the live node ${this.holder}'s: every node needs ` +
      "its own, the address where the other nodes reach its --peer-port (its host and that port)"
    )
  }
}

export interface ClusterConfig {
  readonly nodeId: string
  /** `host:port` the other nodes reach this node's peer service at. */
  readonly peerAddress: string
  /** The port this node's peer service listens on. */
  readonly peerPort: number
  /**
   * Where agents reach this node (`host:port` of its gRPC service), told to agents as a failover hint. Default:
   * the peer address's host with the bound gRPC port (`advertise`).
   */
  readonly clientAddress?: string
  /** Shared by the nodes; authenticates calls on the peer port (never shown, never logged). */
  readonly secret: Redacted.Redacted<string>
  /** How long a lease lives without renewal. Default 10 s. */
  readonly leaseMs?: number
  /** How often the lease is renewed. Default a third of the lease. */
  readonly renewEvery?: Duration.DurationInput
  /**
   * Told once, as soon as the node starts waiting for its id's lease to lapse (what for, how long at most): the CLI
   * prints it on stderr. Default: logged.
   */
  readonly progress?: (line: string) => Effect.Effect<void>
}

/** A live peer as this node last saw it. */
export interface PeerView {
  readonly nodeId: string
  readonly peerAddress: string
  /** Milliseconds since the peer last renewed its lease (the database's clock), as of now. */
  readonly leaseAgeMs: number
}

/** This node's view of the cluster. */
export interface ClusterView {
  readonly nodeId: string
  readonly peerAddress: string
  readonly leaseMs: number
  /** Milliseconds since this node last renewed its lease; over `leaseMs`, the others count it dead. */
  readonly leaseAgeMs: number
  /** The last renewal failed with this (the node keeps trying). */
  readonly lastError?: string
  /** The other live nodes, by node id. */
  readonly peers: ReadonlyArray<PeerView>
  readonly forwardedSessions: number
  readonly peerErrors: number
}

export class ClusterNode extends Context.Tag("@cmdop/relay/ClusterNode")<
  ClusterNode,
  {
    readonly config: ClusterConfig & { readonly leaseMs: number }
    readonly view: Effect.Effect<ClusterView>
    /**
     * The node serves agents at `address` (known once its gRPC port is bound): recorded with the lease at once,
     * so the other nodes tell their agents about it.
     */
    readonly advertise: (address: string) => Effect.Effect<void>
    /** Where agents reach the live nodes (this one included), by node id, as of the last renewal. */
    readonly relayAddresses: Effect.Effect<ReadonlyArray<string>>
    /** One more session forwarded to the node holding its machine. */
    readonly countForwarded: Effect.Effect<void>
    /** One more failed call to a peer node. */
    readonly countPeerError: Effect.Effect<void>
  }
>() {}

interface Renewal {
  /** This node's clock when the renewal answered. */
  readonly at: number
  /** The database's clock at that renewal (this node's `renewedAt`). */
  readonly dbNow: number
  readonly nodes: ReadonlyArray<NodeInfo>
}

/**
 * The first renewal, waiting while the id's live lease names our own peer address under another token: an earlier
 * run of this node that died, whose lease lapses within `leaseMs`. Another address is a second node started with
 * this id by mistake: refused at once.
 */
const takeOver = (
  renew: Effect.Effect<Renewal, MachineRoutesError | NodeIdInUse>,
  peerAddress: string,
  leaseMs: number,
  progress: (line: string) => Effect.Effect<void>
) => {
  const waits = (e: MachineRoutesError | NodeIdInUse) => e._tag === "NodeIdInUse" && e.holderAddress === peerAddress
  let told = false
  const tell = (e: MachineRoutesError | NodeIdInUse): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (told || e._tag !== "NodeIdInUse" || !waits(e)) return Effect.void
      told = true
      return progress(
        `node id ${e.nodeId} has a live lease at this node's own peer address ${peerAddress} (renewed ` +
          `${Math.round(e.ageMs)} ms ago), as after a restart: waiting for it to lapse, at most ` +
          `${Duration.format(Duration.millis(leaseMs * 2))} (if another node runs with this id, stop it or give ` +
          "this one its own --node-id)"
      )
    })
  return renew.pipe(
    Effect.tapError(tell),
    Effect.retry({
      while: waits,
      schedule: Schedule.spaced(Duration.millis(Math.max(50, Math.floor(leaseMs / 10)))).pipe(
        Schedule.upTo(Duration.millis(leaseMs * 2))
      )
    })
  )
}

/** Takes the lease (failing when the store cannot be reached) and keeps it for the life of the scope. */
export const make = (config: ClusterConfig) =>
  Effect.gen(function* () {
    const routes = yield* MachineRoutes
    const leaseMs = config.leaseMs ?? defaultLeaseMs
    const self = {
      nodeId: config.nodeId,
      peerAddress: config.peerAddress,
      instance: randomUUID(),
      clientAddress: config.clientAddress ?? "",
      secretFingerprint: PeerSecret.fingerprint(config.secret)
    }
    let forwardedSessions = 0
    let peerErrors = 0
    let lastError: string | undefined

    const renew: Effect.Effect<Renewal, MachineRoutesError | NodeIdInUse> = Effect.gen(function* () {
      const nodes = yield* routes.renewLease(self)
      const at = yield* Clock.currentTimeMillis
      const dbNow = nodes.find((n) => n.nodeId === config.nodeId)?.renewedAt ?? 0
      return { at, dbNow, nodes }
    })

    // Another secret than the live nodes' (an earlier run of this id aside): refused before the lease is taken.
    const others = (yield* routes.liveNodes).filter(
      (n) => n.nodeId !== config.nodeId && n.secretFingerprint !== "" && n.secretFingerprint !== self.secretFingerprint
    )
    if (others.length > 0)
      return yield* new ClusterSecretMismatch({ nodeId: config.nodeId, others: others.map((n) => n.nodeId) })
    const sharing = (yield* routes.liveNodes).find(
      (n) => n.nodeId !== config.nodeId && n.peerAddress === config.peerAddress
    )
    if (sharing !== undefined)
      return yield* new PeerAddressInUse({
        nodeId: config.nodeId,
        peerAddress: config.peerAddress,
        holder: sharing.nodeId
      })
    let last = yield* takeOver(renew, config.peerAddress, leaseMs, config.progress ?? ((line) => Effect.logInfo(line)))
    yield* Effect.addFinalizer(() =>
      routes.dropLease(self).pipe(
        Effect.timeout("2 seconds"),
        Effect.catchAll((e) => Effect.logWarning(`could not give up the cluster lease of ${config.nodeId}: ${e}`))
      )
    )
    // A failing renewal is logged when the failure starts or its cause changes, not every third of a lease, and
    // the first renewal after it says the node is back (a database outage otherwise filled the log).
    const renewNow = renew.pipe(
      Effect.flatMap((renewal) => {
        const was = lastError
        last = renewal
        lastError = undefined
        return was === undefined
          ? Effect.void
          : Effect.logInfo(`renewing the cluster lease of ${config.nodeId} works again (it failed: ${was})`)
      }),
      Effect.catchAll((e) => {
        const was = lastError
        lastError = e._tag === "MachineRoutesError" ? e.detail : e.message
        return was === lastError
          ? Effect.void
          : Effect.logWarning(`renewing the cluster lease of ${config.nodeId} failed: ${lastError}`)
      }),
      Effect.asVoid
    )
    yield* renewNow.pipe(
      Effect.repeat(Schedule.spaced(config.renewEvery ?? Duration.millis(Math.max(100, Math.floor(leaseMs / 3))))),
      Effect.forkScoped
    )

    const view = Effect.map(Clock.currentTimeMillis, (now): ClusterView => {
      const since = Math.max(0, now - last.at)
      return {
        nodeId: config.nodeId,
        peerAddress: config.peerAddress,
        leaseMs,
        leaseAgeMs: since,
        ...(lastError === undefined ? {} : { lastError }),
        peers: last.nodes
          .filter((n) => n.nodeId !== config.nodeId)
          .map((n) => ({
            nodeId: n.nodeId,
            peerAddress: n.peerAddress,
            leaseAgeMs: Math.max(0, last.dbNow - n.renewedAt) + since
          }))
          // A peer whose lease lapsed since the last renewal is dead to this node too.
          .filter((p) => p.leaseAgeMs < leaseMs),
        forwardedSessions,
        peerErrors
      }
    })

    return ClusterNode.of({
      config: { ...config, leaseMs },
      view,
      advertise: (address) =>
        Effect.suspend(() => {
          if (config.clientAddress !== undefined || self.clientAddress === address) return Effect.void
          self.clientAddress = address
          return renewNow
        }),
      relayAddresses: Effect.sync(() => {
        const others = last.nodes.filter((n) => n.nodeId !== config.nodeId && n.clientAddress !== "")
        const all = self.clientAddress === "" ? others : [...others, { ...self, renewedAt: 0 }]
        return all.sort((a, b) => a.nodeId.localeCompare(b.nodeId)).map((n) => n.clientAddress)
      }),
      countForwarded: Effect.sync(() => {
        forwardedSessions += 1
      }),
      countPeerError: Effect.sync(() => {
        peerErrors += 1
      })
    })
  })

export const layer = (
  config: ClusterConfig
): Layer.Layer<
  ClusterNode,
  MachineRoutesError | NodeIdInUse | ClusterSecretMismatch | PeerAddressInUse,
  MachineRoutes
> => Layer.scoped(ClusterNode, make(config))
