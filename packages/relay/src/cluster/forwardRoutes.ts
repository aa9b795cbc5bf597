/**
 * Routes this node forwarded to lately, by the name a caller used: a busy client's calls to a machine on another
 * node skip the store (name resolution, then the routing table) for `ttlMs`. The cache only saves those reads: a
 * stale route never decides an answer. A call on a cached route that the node no longer serves (the node died: the
 * link fails; the machine moved: that node says it is offline) is made again at once on a fresh lookup, before any
 * input was consumed (`forwardCore.ts`); the owning node checks every call itself (the name, the caller's scope);
 * a machine whose stream this node now holds is served here whatever the cache says; and a route is forgotten on any
 * failure.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { Caller } from "../Authenticator.js"
import type { Route } from "./MachineRoutes.js"

/** How long a route found for a name is reused (each lookup lists the caller's machines: not on every call). */
export const DEFAULT_TTL_MS = 10_000

/** Entries kept at most (a node forwarding to more names at once than this just looks them up again). */
const MAX_ENTRIES = 10_000

export interface RouteCache {
  readonly get: (caller: Caller, query: string) => Effect.Effect<Route | undefined>
  readonly set: (caller: Caller, query: string, route: Route) => Effect.Effect<void>
  /** Forgets every name that led to this machine. */
  readonly forget: (machineId: string) => void
}

/** A name as one caller's view resolves it: its workspace, and for a guest its one machine. */
const keyOf = (caller: Caller, query: string) => `${caller.workspaceId}\u0000${caller.machineId ?? ""}\u0000${query}`

export const make = (ttlMs: number = DEFAULT_TTL_MS): RouteCache => {
  const entries = new Map<string, { readonly route: Route; readonly at: number }>()
  return {
    get: (caller, query) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const key = keyOf(caller, query)
        const entry = entries.get(key)
        if (entry === undefined) return undefined
        if (now - entry.at < ttlMs) return entry.route
        entries.delete(key)
        return undefined
      }),
    set: (caller, query, route) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        if (entries.size >= MAX_ENTRIES) entries.clear()
        entries.set(keyOf(caller, query), { route, at: now })
      }),
    forget: (machineId) => {
      for (const [key, entry] of entries) if (entry.route.machineId === machineId) entries.delete(key)
    }
  }
}
