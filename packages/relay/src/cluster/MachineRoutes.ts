/**
 * Where each machine's agent stream is held, in a cluster of relay nodes sharing one database: the routing table
 * (machine → node, connection epoch) and the nodes' leases. A node records a route when it accepts an agent's
 * stream and removes it when the stream closes, guarded by the epoch, so a late close on one node never erases a
 * newer connection on another. A node whose lease lapsed is dead to the others: its routes are not returned.
 *
 * `layerMemory` serves a single process (one node, or several in-process nodes in tests sharing one instance);
 * the PostgreSQL layer (cluster mode) passes the same contract suite.
 */
import type { MachineId } from "@cmdop/domain/Machine"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

/** A relay node as the others see it. */
export interface NodeInfo {
  readonly nodeId: string
  /** `host:port` of the node's internal peer gRPC service. */
  readonly peerAddress: string
  /** Where agents reach the node (its gRPC address); empty until the node serves. */
  readonly clientAddress: string
  /** When the node last renewed its lease (epoch ms, the store's clock). */
  readonly renewedAt: number
  /** The fingerprint of the node's cluster secret (`PeerSecret.fingerprint`); empty for a node that records none. */
  readonly secretFingerprint: string
}

/**
 * A node's claim on its id: the id, the peer address, and a token fresh for every run of the node, so the lease
 * tells a restarted node (a new token) from the one renewing it. Node ids must be unique across the live nodes.
 */
export interface NodeLease {
  readonly nodeId: string
  readonly peerAddress: string
  /** Random per run of the node; never shown to clients. */
  readonly instance: string
  /** Where agents reach the node, once it serves. */
  readonly clientAddress?: string
  /** The fingerprint of the node's cluster secret (`PeerSecret.fingerprint`), never the secret itself. */
  readonly secretFingerprint?: string
}

/** The node id is held by another live run of a node: its lease was renewed under another instance token. */
export class NodeIdInUse extends Data.TaggedError("NodeIdInUse")<{
  readonly nodeId: string
  /** The peer address the live holder registered. */
  readonly holderAddress: string
  /** How long ago the holder renewed its lease. */
  readonly ageMs: number
}> {
  override get message(): string {
    return (
      `node id ${this.nodeId} is already in use by a live relay node at ${this.holderAddress} ` +
      `(its lease was renewed ${Math.round(this.ageMs)} ms ago): give every node its own --node-id, ` +
      "or stop the other node first"
    )
  }
}

/** The node holding a machine's live agent stream, and which connection of it. */
export interface Route {
  readonly machineId: MachineId
  readonly nodeId: string
  readonly peerAddress: string
  /** Grows with every accepted connection of this machine, across the cluster. */
  readonly epoch: number
}

export class MachineRoutesError extends Data.TaggedError("MachineRoutesError")<{
  readonly operation: string
  readonly detail: string
}> {
  override get message(): string {
    return `cluster routing table: ${this.operation} failed: ${this.detail}`
  }
}

export class MachineRoutes extends Context.Tag("@cmdop/relay/MachineRoutes")<
  MachineRoutes,
  {
    /**
     * Registers or renews this node's lease; returns the live nodes (this one included), by node id. Fails with
     * `NodeIdInUse` while the id's lease is live under another instance token. A new instance taking the id (a
     * fresh id, or the lapsed lease of an earlier run) clears the routes the earlier run left: its streams are gone.
     */
    readonly renewLease: (node: NodeLease) => Effect.Effect<ReadonlyArray<NodeInfo>, MachineRoutesError | NodeIdInUse>
    /** Gives up this node's lease (clean shutdown), with every route it held; a no-op once another run holds it. */
    readonly dropLease: (node: Omit<NodeLease, "peerAddress">) => Effect.Effect<void, MachineRoutesError>
    /** The nodes whose lease is live, by node id. */
    readonly liveNodes: Effect.Effect<ReadonlyArray<NodeInfo>, MachineRoutesError>
    /** Records that `nodeId` now holds the machine's stream; returns the new connection epoch. */
    readonly claim: (machineId: MachineId, nodeId: string) => Effect.Effect<number, MachineRoutesError>
    /** Removes the route only if it is still this node's connection `epoch` (a later claim wins). */
    readonly release: (machineId: MachineId, nodeId: string, epoch: number) => Effect.Effect<void, MachineRoutesError>
    /**
     * Removes every route `nodeId` holds, in one write (a node stopping: its streams all closed, one `release` each
     * would take a statement per machine). A later claim by another node is not this node's route and stays.
     */
    readonly releaseNode: (nodeId: string) => Effect.Effect<void, MachineRoutesError>
    /** The live route of a machine: `None` when no live node holds its stream. */
    readonly locate: (machineId: MachineId) => Effect.Effect<Option.Option<Route>, MachineRoutesError>
    /** The live routes of several machines at once (listings): machines without one are absent from the map. */
    readonly locateMany: (
      machineIds: ReadonlyArray<MachineId>
    ) => Effect.Effect<ReadonlyMap<MachineId, Route>, MachineRoutesError>
  }
>() {}

/** How long a lease lives without renewal. */
export const defaultLeaseMs = 10_000

/** One process's routing table: a Map, with leases on the Effect `Clock` (so tests can use `TestClock`). */
export const makeMemory = (leaseMs: number = defaultLeaseMs): Effect.Effect<MachineRoutes["Type"]> =>
  Effect.sync(() => {
    const nodes = new Map<string, NodeInfo & { readonly instance: string }>()
    const routes = new Map<MachineId, { nodeId: string; epoch: number }>()
    const epochs = new Map<MachineId, number>()
    const dropRoutes = (nodeId: string) => {
      for (const [machineId, route] of routes) if (route.nodeId === nodeId) routes.delete(machineId)
    }
    const live = (now: number) =>
      [...nodes.values()]
        .filter((n) => now - n.renewedAt < leaseMs)
        .sort((a, b) => a.nodeId.localeCompare(b.nodeId))
        .map(({ clientAddress, nodeId, peerAddress, renewedAt, secretFingerprint }): NodeInfo => ({
          nodeId,
          peerAddress,
          clientAddress,
          renewedAt,
          secretFingerprint
        }))
    const liveRoute = (machineId: MachineId, now: number): Route | undefined => {
      const route = routes.get(machineId)
      if (route === undefined) return undefined
      const node = nodes.get(route.nodeId)
      if (node === undefined || now - node.renewedAt >= leaseMs) return undefined
      return { machineId, nodeId: route.nodeId, peerAddress: node.peerAddress, epoch: route.epoch }
    }
    return MachineRoutes.of({
      renewLease: (node) =>
        Effect.clockWith((clock) => clock.currentTimeMillis).pipe(
          Effect.flatMap((now) => {
            const held = nodes.get(node.nodeId)
            if (held !== undefined && held.instance !== node.instance && now - held.renewedAt < leaseMs)
              return Effect.fail(
                new NodeIdInUse({ nodeId: node.nodeId, holderAddress: held.peerAddress, ageMs: now - held.renewedAt })
              )
            if (held?.instance !== node.instance) dropRoutes(node.nodeId)
            nodes.set(node.nodeId, {
              nodeId: node.nodeId,
              peerAddress: node.peerAddress,
              clientAddress: node.clientAddress ?? "",
              instance: node.instance,
              renewedAt: now,
              secretFingerprint: node.secretFingerprint ?? ""
            })
            return Effect.succeed(live(now))
          })
        ),
      dropLease: (node) =>
        Effect.sync(() => {
          if (nodes.get(node.nodeId)?.instance !== node.instance) return
          nodes.delete(node.nodeId)
          dropRoutes(node.nodeId)
        }),
      liveNodes: Effect.clockWith((clock) => clock.currentTimeMillis).pipe(Effect.map(live)),
      claim: (machineId, nodeId) =>
        Effect.sync(() => {
          const epoch = (epochs.get(machineId) ?? 0) + 1
          epochs.set(machineId, epoch)
          routes.set(machineId, { nodeId, epoch })
          return epoch
        }),
      release: (machineId, nodeId, epoch) =>
        Effect.sync(() => {
          const route = routes.get(machineId)
          if (route !== undefined && route.nodeId === nodeId && route.epoch === epoch) routes.delete(machineId)
        }),
      releaseNode: (nodeId) => Effect.sync(() => dropRoutes(nodeId)),
      locate: (machineId) =>
        Effect.clockWith((clock) => clock.currentTimeMillis).pipe(
          Effect.map((now) => Option.fromNullable(liveRoute(machineId, now)))
        ),
      locateMany: (machineIds) =>
        Effect.clockWith((clock) => clock.currentTimeMillis).pipe(
          Effect.map((now) => {
            const found = new Map<MachineId, Route>()
            for (const machineId of machineIds) {
              const route = liveRoute(machineId, now)
              if (route !== undefined) found.set(machineId, route)
            }
            return found
          })
        )
    })
  })

export const layerMemory = (leaseMs?: number): Layer.Layer<MachineRoutes> =>
  Layer.effect(MachineRoutes, makeMemory(leaseMs))
