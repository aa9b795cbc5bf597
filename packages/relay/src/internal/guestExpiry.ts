/**
 * A guest's session, or its view of one, ends the moment its share link expires, not at the next sweep: this
 * runs an action at the link's expiry, for as long as the enclosing scope lives.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Caller } from "../Authenticator.js"

/** Runs `onExpiry` when `caller`'s link expires (never for a caller without an expiry). */
export const atExpiry = (caller: Caller, onExpiry: Effect.Effect<void>): Effect.Effect<void, never, Scope.Scope> => {
  const expiresAt = caller.expiresAt
  if (expiresAt === undefined) return Effect.void
  return Clock.currentTimeMillis.pipe(
    Effect.flatMap((now) => Effect.sleep(Duration.millis(Math.max(0, expiresAt - now)))),
    Effect.zipRight(onExpiry),
    Effect.forkScoped,
    Effect.asVoid
  )
}
