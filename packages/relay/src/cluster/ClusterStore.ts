/**
 * The relay store as a cluster node sees it: the shared store, with a machine's online state read from the
 * routing table instead of the `online` column. One node's view of its own streams would be wrong for the others
 * (a node marking a machine offline when its stream closed, while the agent is already back through another node;
 * a node starting up marking every machine offline), so here:
 *  - `markOnline` (the node accepted the machine's stream) claims the route and remembers the connection's epoch;
 *  - `markOffline` (that connection closed) releases the route with that connection's epoch only, so a newer
 *    connection on this node or another stays (and clears the stored flag only when no node holds the machine);
 *  - `markAllOffline` (relay start) leaves the others' machines alone (the node drops its own old routes when it
 *    takes its lease, `ClusterNode.ts`);
 *  - machine reads (`listMachines`, `getMachine`, `registerMachine`) say online exactly when a live node holds a
 *    route, so a listing on any node shows the same states.
 * Heartbeat times stay in the store (shared), and everything else passes through.
 */
import * as Machine from "@cmdop/domain/Machine"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import { RelayStoreError } from "../store/RelayStoreError.js"
import { MachineRecord } from "../store/records.js"
import type { RelayStore } from "../store/service.js"
import type { MachineRoutes, MachineRoutesError } from "./MachineRoutes.js"

const routesFailure = (e: MachineRoutesError) =>
  new RelayStoreError({ reason: "Sql", subject: e.operation, detail: e.detail })

/** `store` with machine liveness from `routes`, for node `nodeId`. */
export const make = (store: RelayStore["Type"], routes: MachineRoutes["Type"], nodeId: string): RelayStore["Type"] => {
  /**
   * This node's current stream of each machine it holds: which connection, and the epoch its claim got (pending
   * while the claim is in flight, so a close racing its own claim releases that claim, not an older one). Each
   * connection releases only its own epoch: when a stream closes and the agent's next one is accepted on this same
   * node before the close is handled, the old connection's `markOffline` finds the new one here and leaves it.
   */
  const held = new Map<
    Machine.MachineId,
    { readonly connection: object | undefined; readonly claimed: Deferred.Deferred<number, RelayStoreError> }
  >()

  const liveOf = (ids: ReadonlyArray<Machine.MachineId>) => routes.locateMany(ids).pipe(Effect.mapError(routesFailure))

  const withRoute = (record: MachineRecord) =>
    Effect.map(liveOf([record.id]), (live) =>
      live.has(record.id) === record.online ? record : new MachineRecord({ ...record, online: live.has(record.id) })
    )

  return {
    ...store,
    registerMachine: (registration) => Effect.flatMap(store.registerMachine(registration), withRoute),
    getMachine: (id) => Effect.flatMap(store.getMachine(id), withRoute),
    listMachines: (workspaceId) =>
      Effect.gen(function* () {
        const machines = yield* store.listMachines(workspaceId)
        const live = yield* liveOf(machines.map((m) => m.id))
        return machines.map((m) =>
          live.has(m.id) === m.online ? m : new Machine.Machine({ ...m, online: live.has(m.id) })
        )
      }),
    markOnline: (id, at, connection) =>
      Effect.gen(function* () {
        const claimed = yield* Deferred.make<number, RelayStoreError>()
        const previous = held.get(id)
        held.set(id, { connection, claimed })
        // Claims of one machine from this node go in order: a new stream's claim after the old one's, so the new
        // connection's epoch is the greater even when the old claim is still in flight (a pool runs them at once).
        if (previous !== undefined) yield* Effect.exit(Deferred.await(previous.claimed))
        yield* store.markOnline(id, at).pipe(
          Effect.zipRight(routes.claim(id, nodeId).pipe(Effect.mapError(routesFailure))),
          Effect.exit,
          Effect.flatMap((exit) => Effect.zipRight(Deferred.done(claimed, exit), exit))
        )
      }),
    markOffline: (id, connection) =>
      Effect.gen(function* () {
        const current = held.get(id)
        // Not this node's current connection of the machine: a newer one (whose claim supersedes it) holds it.
        if (current === undefined || (connection !== undefined && current.connection !== connection)) return
        held.delete(id)
        // A claim that failed left no route to release.
        const epoch = yield* Effect.option(Deferred.await(current.claimed))
        if (epoch._tag === "Some") yield* routes.release(id, nodeId, epoch.value).pipe(Effect.mapError(routesFailure))
        // The stored flag (what host-side commands such as `relay workspace list` read) follows, unless the agent
        // is already back through another node.
        if ((yield* liveOf([id])).size === 0) yield* store.markOffline(id)
      }),
    markAllOffline: Effect.void
  }
}
