/**
 * Workspace API keys: `ck_live_` or `ck_test_` followed by 32+ base62 characters.
 *
 * Keys are held as `Redacted` values inside the program; only their hash and a short prefix ever reach the relay's
 * store. Share tokens (JWTs) travel through the same `authorization: Bearer` header, so the wire type is any
 * non-empty bearer credential; `ApiKeyFormat` is the stricter check for keys we mint.
 */
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/** The pattern of a workspace API key minted by a relay. */
export const ApiKeyPattern = /^ck_(live|test)_[0-9A-Za-z]{32,}$/

/** A workspace API key string in the minted format. */
export const ApiKeyFormat = Schema.String.pipe(
  Schema.pattern(ApiKeyPattern, {
    message: () => "an API key looks like ck_live_ followed by at least 32 letters and digits"
  })
)

/**
 * Any bearer credential a user may pass (`--api-key`, `CMDOP_API_KEY`, the store): an API key or a share token.
 * Whitespace is not allowed: a pasted key with a trailing newline is a common mistake worth a clear error.
 */
export const BearerCredential = Schema.String.pipe(
  Schema.minLength(1, { message: () => "the API key is empty" }),
  Schema.pattern(/^\S+$/, { message: () => "the API key contains whitespace; paste it without spaces or newlines" })
)

/** A bearer credential decoded into a `Redacted` value. */
export const RedactedCredential = Schema.Redacted(BearerCredential)

/** Mints a fresh workspace API key from a cryptographically secure source. */
export const generate = (kind: "live" | "test" = "live"): Redacted.Redacted<string> => {
  const bytes = new Uint8Array(40)
  globalThis.crypto.getRandomValues(bytes)
  // 40 bytes, each reduced mod 62, drawn until we have 40 unbiased characters.
  let out = ""
  while (out.length < 40) {
    globalThis.crypto.getRandomValues(bytes)
    for (const b of bytes) {
      if (b < 248 && out.length < 40) out += BASE62[b % 62]
    }
  }
  return Redacted.make(`ck_${kind}_${out}`)
}

/** The short, non-secret prefix the relay stores next to a key's hash (enough to tell keys apart in listings). */
export const prefixOf = (key: Redacted.Redacted<string>): string => Redacted.value(key).slice(0, 12)
