/**
 * Agents' heartbeats reach the store in batches, not one commit each: on the embedded SQLite store a commit waits
 * for the disk (a few ms, more on a busy one) while the event loop stands still, so with thousands of agents
 * heartbeating every 30 s the relay spent its time in commits, stopped reading its agents' streams and closed them
 * as silent. Now a heartbeat only sets the connection's `lastSeen` (in memory: liveness and this relay's listings
 * read it there); every `interval` the times that changed are written in transactions of `BATCH` machines, and a
 * closing connection writes its last one. The store's `last_heartbeat_at` (other cluster nodes' listings, offline
 * machines) lags by at most `interval`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { MachineId } from "@cmdop/domain/Machine"
import type { RelayStore } from "../store/service.js"
import type { Connection, Registry } from "./sessions.js"

/** Machines per transaction: a bounded pause of the event loop per commit. */
const BATCH = 500

/** What each connection's last write said, so that an unchanged time is not written again. */
const written = new WeakMap<Connection, number>()

/** Writes `conn`'s last heartbeat if the store does not have it yet (the connection is closing). */
export const writeLast = (store: RelayStore["Type"], conn: Connection): Effect.Effect<void> =>
  written.get(conn) === conn.lastSeen ? Effect.void : Effect.ignore(store.heartbeats([[conn.machineId, conn.lastSeen]]))

/** One pass: the connections whose `lastSeen` changed since the last write, in batches. */
export const flush = (registry: Registry, store: RelayStore["Type"]): Effect.Effect<void> =>
  Effect.suspend(() => writeChanged(registry.all(), store))

/** The last heartbeats of `conns` the store does not have yet, in batches (a stopping relay's closed connections). */
export const writeChanged = (conns: ReadonlyArray<Connection>, store: RelayStore["Type"]): Effect.Effect<void> =>
  Effect.suspend(() => {
    const beats: Array<readonly [MachineId, number]> = []
    for (const conn of conns) {
      if (written.get(conn) === conn.lastSeen) continue
      written.set(conn, conn.lastSeen)
      beats.push([conn.machineId, conn.lastSeen])
    }
    const batches: Array<ReadonlyArray<readonly [MachineId, number]>> = []
    for (let i = 0; i < beats.length; i += BATCH) batches.push(beats.slice(i, i + BATCH))
    // A failed write is tried again at the next pass only for connections that heartbeat again: the time is a
    // display value (liveness never reads it from the store).
    return Effect.forEach(batches, (batch) => Effect.ignore(store.heartbeats(batch)), { discard: true })
  })

/** Flushes every `interval` for as long as the enclosing scope lives. */
export const run = (registry: Registry, store: RelayStore["Type"], interval: Duration.DurationInput) =>
  flush(registry, store).pipe(
    Effect.repeat(Schedule.spaced(Duration.decode(interval))),
    Effect.forkScoped,
    Effect.asVoid
  )
