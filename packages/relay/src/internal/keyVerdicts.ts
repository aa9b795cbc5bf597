/**
 * A short-lived cache of API-key verdicts around the relay's authentication: checking a key is a query on the store
 * (~0.2–0.7 ms, on every call). A key's verdict is reused only while the store has not changed since it was reached,
 * so a revoked or rotated key is refused on the very next call, wherever the change was made (this relay, its web
 * cabinet, or `cmdop relay key …` on the host, which writes the same SQLite file over a connection of its own).
 *
 * "Has not changed" is the store's version probe: for the embedded SQLite store in WAL mode, the wal-index header
 * in `<db>-shm`, which SQLite rewrites on every commit by any connection (its change counter and last frame; see
 * the SQLite "WAL-mode file format" page) — one 96-byte read, a few microseconds. A store without a probe
 * (PostgreSQL, where another node's change arrives by notification, later) gets no cache: every call asks it.
 * Only accepted keys are cached; share tokens, OAuth tokens and refusals are checked every time.
 */
import type { AccessError } from "@cmdop/domain/AccessError"
import type { RelayError } from "@cmdop/domain/RelayError"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import type { Caller } from "../Authenticator.js"

/** Answers a token that changes whenever the store's data may have changed; `undefined` when it cannot tell. */
export type VersionProbe = () => string | undefined

/** The relay's credential check (`Authenticator.make(…).authenticate`). */
export type Authenticate = (
  credential: Redacted.Redacted<string> | undefined,
  requestedWorkspace?: string
) => Effect.Effect<Caller, AccessError | RelayError>

/** How long a verdict may be reused even when nothing changed (a bound on anything the probe could miss). */
const TTL_MS = 2_000
/** Distinct keys kept at most; the cache is emptied when full (a handful of keys is the normal case). */
const MAX_ENTRIES = 1_024

interface Verdict {
  readonly caller: Caller
  readonly version: string
  readonly until: number
}

/**
 * `authenticate` with accepted API keys remembered while `version()` stays the same (at most {@link TTL_MS}).
 * Checks of one key that miss at once (with the same version) share one: when a verdict lapsed under a steady
 * stream of an agent fleet's heartbeats, each asked the store on its own, and in a connect storm hundreds of those
 * queries queued behind the handshakes. The shared check runs on a fiber of its own, so a caller that goes away
 * does not take it from the others.
 */
export const cached = (authenticate: Authenticate, version: VersionProbe): Authenticate => {
  const verdicts = new Map<string, Verdict>()
  const inFlight = new Map<string, { readonly version: string; readonly fiber: Fiber.RuntimeFiber<Caller, Failure> }>()
  return (credential, requestedWorkspace) => {
    if (credential === undefined) return authenticate(credential, requestedWorkspace)
    const raw = Redacted.value(credential)
    if (!raw.startsWith("ck_")) return authenticate(credential, requestedWorkspace)
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const before = version()
      const hit = verdicts.get(raw)
      if (hit !== undefined && before !== undefined && hit.version === before && now < hit.until)
        return Effect.succeed(hit.caller)
      if (hit !== undefined) verdicts.delete(raw)
      // Remembered against the version seen before the check: a change during it invalidates the verdict.
      const remember = (caller: Caller) =>
        Effect.sync(() => {
          if (before === undefined || caller.kind !== "key") return
          if (verdicts.size >= MAX_ENTRIES) verdicts.clear()
          verdicts.set(raw, { caller, version: before, until: now + TTL_MS })
        })
      if (before === undefined) return Effect.tap(authenticate(credential, requestedWorkspace), remember)
      const key = `${raw}\u0000${requestedWorkspace ?? ""}`
      const flying = inFlight.get(key)
      if (flying !== undefined && flying.version === before) return joinShared(flying.fiber)
      return Effect.flatMap(
        Effect.forkDaemon(Effect.tap(authenticate(credential, requestedWorkspace), remember)),
        (fiber) => {
          inFlight.set(key, { version: before, fiber })
          fiber.addObserver(() => {
            if (inFlight.get(key)?.fiber === fiber) inFlight.delete(key)
          })
          return joinShared(fiber)
        }
      )
    })
  }
}

type Failure = AccessError | RelayError

/** The shared check's outcome (not `Fiber.join`: that would also merge the check fiber's refs into each caller's). */
const joinShared = (fiber: Fiber.RuntimeFiber<Caller, Failure>): Effect.Effect<Caller, Failure> =>
  Effect.flatMap(Fiber.await(fiber), (exit) => exit)

/**
 * The version probe of a SQLite database at `dbFile` in WAL mode: its wal-index header (both copies, 96 bytes of
 * `<dbFile>-shm`) and the file's inode. `undefined` when there is no such file (not in WAL mode, or not yet open).
 */
export const walIndexProbe = (dbFile: string): VersionProbe => {
  const shm = `${dbFile}-shm`
  const header = Buffer.alloc(96)
  let fd = -1
  let inode = -1
  return () => {
    try {
      const stat = fs.statSync(shm)
      if (fd < 0 || stat.ino !== inode) {
        if (fd >= 0) fs.closeSync(fd)
        fd = fs.openSync(shm, "r")
        inode = stat.ino
      }
      if (fs.readSync(fd, header, 0, header.length, 0) !== header.length) return undefined
      return `${inode}:${header.toString("base64")}`
    } catch {
      return undefined
    }
  }
}
