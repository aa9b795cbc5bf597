/**
 * The relay store as a cluster node sees it: the shared store, with a machine's online state read from the
 * routing table instead of the `online` column. One node's view of its own streams would be wrong for the others
 * (a node marking a machine offline when its stream closed, while the agent is already back through another node;
 * a node starting up marking every machine offline), so here:
 *  - `markOnline` (the node accepted the machine's stream) claims the route and remembers its epoch;
 *  - `markOffline` (this node's current stream of it closed) releases the route with that epoch only, so a newer
 *    connection on another node stays;
 *  - `markAllOffline` (relay start) leaves the others' machines alone (the node drops its own old routes when it
 *    takes its lease, `ClusterNode.ts`);
 *  - machine reads (`listMachines`, `getMachine`, `registerMachine`) say online exactly when a live node holds a
 *    route, so a listing on any node shows the same states.
 * Heartbeat times stay in the store (shared), and everything else passes through.
 */
import * as Machine from "@cmdop/domain/Machine"
import * as Effect from "effect/Effect"
import { RelayStoreError } from "../store/RelayStoreError.js"
import { MachineRecord } from "../store/records.js"
import type { RelayStore } from "../store/service.js"
import type { MachineRoutes, MachineRoutesError } from "./MachineRoutes.js"

const routesFailure = (e: MachineRoutesError) =>
  new RelayStoreError({ reason: "Sql", subject: e.operation, detail: e.detail })

/** `store` with machine liveness from `routes`, for node `nodeId`. */
export const make = (store: RelayStore["Type"], routes: MachineRoutes["Type"], nodeId: string): RelayStore["Type"] => {
  /** The epoch of this node's current stream of each machine it holds. */
  const held = new Map<Machine.MachineId, number>()

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
    markOnline: (id, at) =>
      Effect.gen(function* () {
        yield* store.markOnline(id, at)
        const epoch = yield* routes.claim(id, nodeId).pipe(Effect.mapError(routesFailure))
        held.set(id, epoch)
      }),
    markOffline: (id) =>
      Effect.suspend(() => {
        const epoch = held.get(id)
        if (epoch === undefined) return Effect.void
        held.delete(id)
        return routes.release(id, nodeId, epoch).pipe(Effect.mapError(routesFailure))
      }),
    markAllOffline: Effect.void
  }
}
