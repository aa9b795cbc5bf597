/**
 * What `relay serve` adds in cluster mode, several relay nodes on one PostgreSQL: the shared routing table, this
 * node's lease (`ClusterNode.ts`), the events every node reacts to (`ClusterEvents.ts`), and the relay store seen
 * through the routing table (`ClusterStore.ts`). `RelayServer` builds it before the relay core, so the lease is
 * held before the first agent stream is accepted and given up after the last one closed.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { ClusterEvents, type ClusterEventsError } from "./ClusterEvents.js"
import * as ClusterEventsPg from "./ClusterEventsPg.js"
import * as ClusterNode from "./ClusterNode.js"
import { MachineRoutes, type MachineRoutesError } from "./MachineRoutes.js"
import * as MachineRoutesPg from "./MachineRoutesPg.js"

export interface ClusterOptions extends ClusterNode.ClusterConfig {
  /** The shared PostgreSQL (the relay store's): routing table, leases, events. */
  readonly db?: Redacted.Redacted<string>
  /** Instead of `db` (in-process nodes in tests): the routing table and the events, shared by the nodes. */
  readonly routes?: Layer.Layer<MachineRoutes, MachineRoutesError>
  readonly events?: Layer.Layer<ClusterEvents, ClusterEventsError>
  /** The events channel (see `ClusterEventsPg.Options.channel`). */
  readonly channel?: string
}

export type ClusterContext = Context.Context<MachineRoutes | ClusterNode.ClusterNode | ClusterEvents>

/** A cluster part that cannot start (the database unreachable, options missing), as one message. */
export class ClusterStartError extends Data.TaggedError("ClusterStartError")<{ readonly message: string }> {}

/** The routing table, the lease and the events, for the life of the scope. */
export const start = (options: ClusterOptions): Effect.Effect<ClusterContext, ClusterStartError, Scope.Scope> =>
  Effect.gen(function* () {
    const db = options.db
    const routes =
      options.routes ?? (db === undefined ? undefined : MachineRoutesPg.layerPostgres({ url: db, ...leaseOf(options) }))
    const events =
      options.events ??
      (db === undefined
        ? undefined
        : ClusterEventsPg.layer({ url: db, ...(options.channel === undefined ? {} : { channel: options.channel }) }))
    if (routes === undefined || events === undefined)
      return yield* Effect.fail(
        new ClusterStartError({
          message: "cluster mode needs the shared PostgreSQL: pass --db postgres://… on every node"
        })
      )
    return yield* Layer.build(Layer.mergeAll(ClusterNode.layer(options), events).pipe(Layer.provideMerge(routes))).pipe(
      Effect.mapError((e) => new ClusterStartError({ message: `cluster mode: ${e.message}` }))
    )
  })

const leaseOf = (options: ClusterOptions) => (options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs })

/**
 * Runs `onChange` after cluster events, for the life of the scope: at once for the first, and once more for any
 * that arrived while it ran (a burst of events costs at most two runs). Failures are logged, never fatal.
 */
export const react = (
  cluster: ClusterContext,
  onChange: Effect.Effect<void>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const pending = yield* Queue.sliding<void>(1)
    yield* Context.get(cluster, ClusterEvents).subscribe.pipe(
      Stream.runForEach(() => Queue.offer(pending, undefined)),
      Effect.forkScoped
    )
    yield* Queue.take(pending).pipe(
      Effect.zipRight(onChange),
      Effect.catchAllCause((cause) => Effect.logWarning("reacting to a cluster event failed", cause)),
      Effect.forever,
      Effect.forkScoped
    )
  })

/**
 * A version of what the cluster has announced, for reusing a verdict until something may have changed
 * (`RelayCore`'s `recheckVersion`): the count of events seen, for the life of the scope. A `Resync` (listening
 * again after a gap) counts too.
 */
export const eventCount = (cluster: ClusterContext): Effect.Effect<() => string, never, Scope.Scope> =>
  Effect.gen(function* () {
    const seen = { events: 0 }
    yield* Context.get(cluster, ClusterEvents).subscribe.pipe(
      Stream.runForEach(() =>
        Effect.sync(() => {
          seen.events++
        })
      ),
      Effect.forkScoped
    )
    return () => String(seen.events)
  })
