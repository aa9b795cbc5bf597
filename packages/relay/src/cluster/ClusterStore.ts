/**
 * The relay store as a cluster node sees it: the shared store, with a machine's online state read from the
 * routing table instead of the `online` column. One node's view of its own streams would be wrong for the others
 * (a node marking a machine offline when its stream closed, while the agent is already back through another node;
 * a node starting up marking every machine offline), so here:
 *  - `markOnline` (the node accepted the machine's stream) claims the route and remembers the connection's epoch;
 *  - `markOffline` (that connection closed) releases the route with that connection's epoch only, so a newer
 *    connection on this node or another stays (and clears the stored flag only when no node holds the machine);
 *  - `markAllOffline` (relay start) leaves the others' machines alone (the node drops its own old routes when it
 *    takes its lease, `ClusterNode.ts`); at a clean stop it releases every route the node still holds, at once;
 *  - machine reads (`listMachines`, `getMachine`) say online exactly when a live node holds a route, so a listing
 *    on any node shows the same states. `registerMachine` (every agent handshake) answers the stored flag without
 *    that lookup: the core never reads it (its `Register` answer takes online from the node's own connections).
 * Heartbeat times stay in the store (shared), and everything else passes through.
 *
 * An agent's handshake is store work on the node's PostgreSQL pools (its key checked, the machine registered and
 * marked online, its route claimed; a route released when the stream closes). A connect storm (a node died, its
 * agents come back through the others at once) used to queue more of it on a pool than the pool serves within its
 * acquisition timeout (5 s), and those handshakes failed with "Failed to acquire connection". Here that work waits
 * its turn for one of `HANDSHAKE_PERMITS` (fewer than the pool's 10 connections, so listings, heartbeat batches
 * and lease renewals still get one): a storm queues in memory instead. A handshake that still waits after
 * `HANDSHAKE_QUEUE`, or that finds `MAX_WAITING` operations already waiting, fails with a "queued" store error,
 * which the agent sees as UNAVAILABLE and backs off from (to another node of its list).
 */
import * as Machine from "@cmdop/domain/Machine"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { RelayStoreError } from "../store/RelayStoreError.js"
import { MachineRecord } from "../store/records.js"
import type { RelayStore } from "../store/service.js"
import { Turns } from "../internal/turns.js"
import type { MachineRoutes, MachineRoutesError } from "./MachineRoutes.js"

const routesFailure = (e: MachineRoutesError) =>
  new RelayStoreError({ reason: "Sql", subject: e.operation, detail: e.detail })

/** Handshake store operations running at once on a node: under the pools' 10 connections (`@effect/sql-pg`). */
export const HANDSHAKE_PERMITS = 8
/**
 * How long a handshake's store operation may wait for its turn before the agent is told to come back later (a
 * handshake has three: key check, registration, online mark; all three within the agent's patience).
 */
export const HANDSHAKE_QUEUE = Duration.seconds(10)

/** Handshake store operations that may wait for a permit at once; more are refused at once. */
export const MAX_WAITING = 256

/** The detail of the store error a handshake gets when the node's store work stayed queued for too long. */
export const BUSY = "the node's database work is queued"

/**
 * The shared turnstile of a node's handshake store work: `gated` runs its work once one of `permits` is free,
 * failing after `queue` of waiting, or at once when `maxWaiting` operations already wait (a storm beyond what the
 * node can queue is refused cheaply, before any store work, and comes back after the agents' backoff); `queued`
 * waits as long as it takes (a release that must not be lost).
 */
export const turnstile = (permits: number, queue: Duration.DurationInput, maxWaiting: number = MAX_WAITING) => {
  // First come, first served, and no nesting of a waiter's retries (`internal/turns.ts`): with hundreds waiting in
  // a storm, Effect's semaphore cost a node a tenth of its CPU.
  const turns = new Turns(permits)
  const limit = Duration.decode(queue)
  const busy = (operation: string, why: string) =>
    new RelayStoreError({ reason: "Sql", subject: operation, detail: `${BUSY} (${why})` })
  return {
    gated: <A, R>(operation: string, work: Effect.Effect<A, RelayStoreError, R>) =>
      Effect.suspend(() =>
        turns.waiting >= maxWaiting
          ? Effect.fail(busy(operation, `${turns.waiting} waiting behind ${permits} running`))
          : turns.runAfter(
              Effect.timeoutFail(turns.take, {
                duration: limit,
                onTimeout: () => busy(operation, `over ${Duration.format(limit)} behind ${permits} running`)
              }),
              work
            )
      ),
    queued: <A, E, R>(work: Effect.Effect<A, E, R>) => turns.run(work),
    /** How many operations wait for a permit now. */
    waiting: Effect.sync(() => turns.waiting)
  }
}

/** `store` with machine liveness from `routes`, for node `nodeId`; its handshake work through one turnstile. */
export const make = (
  store: RelayStore["Type"],
  routes: MachineRoutes["Type"],
  nodeId: string,
  options: {
    readonly permits?: number
    readonly queue?: Duration.DurationInput
    readonly maxWaiting?: number
  } = {}
): RelayStore["Type"] => {
  const { gated, queued } = turnstile(
    options.permits ?? HANDSHAKE_PERMITS,
    options.queue ?? HANDSHAKE_QUEUE,
    options.maxWaiting ?? MAX_WAITING
  )

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
    authenticateKey: (key) => gated("authenticateKey", store.authenticateKey(key)),
    registerMachine: (registration) => gated("registerMachine", store.registerMachine(registration)),
    getMachine: (id) => Effect.flatMap(store.getMachine(id), withRoute),
    listMachines: (workspaceId) =>
      Effect.gen(function* () {
        const machines = yield* store.listMachines(workspaceId)
        const live = yield* liveOf(machines.map((m) => m.id))
        return machines.map((m) =>
          live.has(m.id) === m.online ? m : new Machine.Machine({ ...m, online: live.has(m.id) })
        )
      }),
    markOnline: (id, at, connection, gateConfigured) =>
      Effect.gen(function* () {
        const claimed = yield* Deferred.make<number, RelayStoreError>()
        const previous = held.get(id)
        held.set(id, { connection, claimed })
        // Claims of one machine from this node go in order: a new stream's claim after the old one's, so the new
        // connection's epoch is the greater even when the old claim is still in flight (a pool runs them at once).
        if (previous !== undefined) yield* Effect.exit(Deferred.await(previous.claimed))
        yield* gated(
          "markOnline",
          store
            .markOnline(id, at, connection, gateConfigured)
            .pipe(Effect.zipRight(routes.claim(id, nodeId).pipe(Effect.mapError(routesFailure))))
        ).pipe(
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
        yield* queued(
          Effect.gen(function* () {
            if (epoch._tag === "Some")
              yield* routes.release(id, nodeId, epoch.value).pipe(Effect.mapError(routesFailure))
            // The stored flag (what host-side commands such as `relay workspace list` read) follows, unless the
            // agent is already back through another node.
            if ((yield* liveOf([id])).size === 0) yield* store.markOffline(id)
          })
        )
      }),
    // At start the node holds nothing yet (its old routes went when it took its lease, `ClusterNode.ts`); when it
    // stops (`RelayCore.stop`), every machine it still holds goes offline at once: its routes in one statement,
    // then the stored flag of those no other node holds now.
    markAllOffline: Effect.suspend(() => {
      if (held.size === 0) return Effect.void
      const entries = [...held.entries()]
      held.clear()
      return Effect.gen(function* () {
        // A claim still in flight would land after the release and leave a route behind.
        yield* Effect.forEach(entries, ([, { claimed }]) => Effect.exit(Deferred.await(claimed)), { discard: true })
        yield* routes.releaseNode(nodeId).pipe(Effect.mapError(routesFailure))
        const live = yield* liveOf(entries.map(([id]) => id))
        yield* Effect.forEach(
          entries.filter(([id]) => !live.has(id)),
          ([id]) => Effect.ignore(store.markOffline(id)),
          { concurrency: HANDSHAKE_PERMITS, discard: true }
        )
      })
    })
  }
}
