/**
 * Masking of secrets (API keys, share tokens, OAuth tokens) for every printout.
 *
 * The rule is the spec's: the first 8 characters, `…`, the last 4; a secret of 16 characters or fewer shows as
 * `****` because revealing 12 of 16 characters would reveal almost all of it.
 */
import * as Redacted from "effect/Redacted"

/** Masks a raw secret string: `ck_live_…a1b2`, or `****` when 16 characters or shorter. */
export const maskString = (secret: string): string =>
  secret.length <= 16 ? "****" : `${secret.slice(0, 8)}…${secret.slice(-4)}`

/** Masks a `Redacted` secret without exposing it anywhere else. */
export const mask = (secret: Redacted.Redacted<string>): string => maskString(Redacted.value(secret))
