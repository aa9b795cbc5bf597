/**
 * Cached refusals of share tokens: a token refused a moment ago (revoked, expired, forged, key rotated, machine
 * gone) is refused again from memory for `REFUSAL_TTL_MS`, without reading the store, so replaying a dead token is
 * cheap for the relay and for every other workspace on it. Only refusals are cached — a refusal never turns into
 * an acceptance (a link cannot be un-revoked) — and never "store unavailable". Tokens are keyed by their hash.
 */
import type { ShareError } from "@cmdop/domain/ShareError"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"

/** How long a refusal is answered from memory. */
export const REFUSAL_TTL_MS = 5_000

/** Refusals remembered at once; beyond this the oldest are dropped. */
const MAX_ENTRIES = 10_000

/** Wraps a token validation so that its refusals are remembered for `REFUSAL_TTL_MS`. */
export const cached = <A>(
  validate: (token: string) => Effect.Effect<A, ShareError>
): ((token: string) => Effect.Effect<A, ShareError>) => {
  const refused = new Map<string, { readonly error: ShareError; readonly until: number }>()
  return (token) =>
    Effect.gen(function* () {
      const key = createHash("sha256").update(token, "utf8").digest("base64url")
      const now = yield* Clock.currentTimeMillis
      const hit = refused.get(key)
      if (hit !== undefined && now < hit.until) return yield* Effect.fail(hit.error)
      return yield* validate(token).pipe(
        Effect.tapError((error) =>
          Effect.sync(() => {
            if (error.reason === "Unavailable") return
            if (refused.size >= MAX_ENTRIES) refused.delete(refused.keys().next().value!)
            refused.delete(key)
            refused.set(key, { error, until: now + REFUSAL_TTL_MS })
          })
        )
      )
    })
}
