/**
 * Changes one node (or an admin command) makes that every node must act on at once: a share link revoked, a
 * workspace key or a signing key retired, a machine moved to another workspace, an account's membership or login
 * changed. On them a node re-checks its live guests and live credentials at once (`ClusterMode.react`), so a
 * revocation anywhere ends a guest's session on any node within a second; the periodic sweeps stay as a safety
 * net.
 *
 * A subscription starts with `Resync`, and emits it again after every reconnection: whatever happened while it
 * was not listening is then re-read from the store, so a missed notification cannot leave a session alive.
 * `layerMemory` serves one process (and tests); the PostgreSQL layer (`ClusterEventsPg.ts`) carries events over
 * `LISTEN/NOTIFY`, published by the database itself (triggers) whichever process made the change.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

export const ShareRevoked = Schema.TaggedStruct("ShareRevoked", { shareId: Schema.String })
export const KeyRetired = Schema.TaggedStruct("KeyRetired", { workspaceId: Schema.String })
export const SigningKeyRetired = Schema.TaggedStruct("SigningKeyRetired", { kid: Schema.String })
export const MachineMoved = Schema.TaggedStruct("MachineMoved", { machineId: Schema.String })
/** A membership removed or changed, a login revoked, an account disabled. */
export const AccountChanged = Schema.TaggedStruct("AccountChanged", { userId: Schema.String })
/** The subscription (re)started: anything may have been missed, re-read the store. */
export const Resync = Schema.TaggedStruct("Resync", {})

export const ClusterEvent = Schema.Union(
  ShareRevoked,
  KeyRetired,
  SigningKeyRetired,
  MachineMoved,
  AccountChanged,
  Resync
)
export type ClusterEvent = typeof ClusterEvent.Type

export class ClusterEventsError extends Data.TaggedError("ClusterEventsError")<{
  readonly operation: string
  readonly detail: string
}> {
  override get message(): string {
    return `cluster events: ${this.operation} failed: ${this.detail}`
  }
}

export class ClusterEvents extends Context.Tag("@cmdop/relay/ClusterEvents")<
  ClusterEvents,
  {
    /** Tells every subscriber, on every node (the PostgreSQL layer's triggers publish store changes themselves). */
    readonly publish: (event: ClusterEvent) => Effect.Effect<void, ClusterEventsError>
    /**
     * The events from now on, starting with `Resync` once listening, and `Resync` again after any gap. It never
     * fails: a lost connection is retried with backoff.
     */
    readonly subscribe: Stream.Stream<ClusterEvent>
  }
>() {}

/** One process's events: a `PubSub`. */
export const makeMemory: Effect.Effect<ClusterEvents["Type"]> = Effect.map(PubSub.unbounded<ClusterEvent>(), (hub) =>
  ClusterEvents.of({
    publish: (event) => Effect.asVoid(PubSub.publish(hub, event)),
    subscribe: Stream.unwrapScoped(
      Effect.map(PubSub.subscribe(hub), (subscription) =>
        Stream.concat(Stream.make(Resync.make({})), Stream.fromQueue(subscription))
      )
    )
  })
)

export const layerMemory: Layer.Layer<ClusterEvents> = Layer.effect(ClusterEvents, makeMemory)
