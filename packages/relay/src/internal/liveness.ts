/**
 * Machine liveness: an agent's connection that has been silent (no message at all) for longer than `staleAfter`
 * is closed, which marks its machine offline and ends its sessions.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { Registry } from "./sessions.js"

/** Closes every connection silent for longer than `staleAfterMs`, as of now. */
export const closeStale = (registry: Registry, staleAfterMs: number) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    for (const conn of registry.all()) {
      const silentMs = now - conn.lastSeen
      if (silentMs > staleAfterMs) yield* conn.close(`no heartbeat for ${Math.round(silentMs / 1000)} s`)
    }
  })

/**
 * Checks for stale connections for as long as the enclosing scope lives, six times per `staleAfter` (at least
 * every 10 s, at most every 250 ms).
 */
export const run = (registry: Registry, staleAfterMs: number) =>
  closeStale(registry, staleAfterMs).pipe(
    Effect.repeat(Schedule.spaced(Duration.millis(Math.max(250, Math.min(10_000, staleAfterMs / 6))))),
    Effect.forkScoped,
    Effect.asVoid
  )
