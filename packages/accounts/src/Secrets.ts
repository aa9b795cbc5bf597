/**
 * The secrets accounts hand out and how the store keeps them. Every bearer secret (access and refresh tokens,
 * device codes, web session ids, sign-in link tokens) carries at least 256 random bits, so an unsalted SHA-256
 * is enough to store it and find it again: a stolen database holds only hashes. User codes are short by design
 * (RFC 8628 §6.1: 8 letters from 20 consonants, about 34.6 bits); they are also stored hashed, live 10 minutes,
 * and are only usable by a signed-in person.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import * as Redacted from "effect/Redacted"

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/** `n` unbiased base62 characters from a cryptographically secure source. */
const base62 = (n: number): string => {
  let out = ""
  while (out.length < n) {
    for (const b of randomBytes(n)) if (b < 248 && out.length < n) out += BASE62[b % 62]
  }
  return out
}

/** 43 base62 characters: 256 bits. */
const TOKEN_CHARS = 43

/** An OAuth access token: `cmdop_` + 256 random bits. Opaque; the relay looks it up by hash. */
export const mintAccessToken = (): Redacted.Redacted<string> => Redacted.make(`cmdop_${base62(TOKEN_CHARS)}`)

/** An OAuth refresh token: `clitr_` + 256 random bits. Rotates on every use. */
export const mintRefreshToken = (): Redacted.Redacted<string> => Redacted.make(`clitr_${base62(TOKEN_CHARS)}`)

/** A device code (RFC 8628 `device_code`): only the polling client ever sees it. */
export const mintDeviceCode = (): Redacted.Redacted<string> => Redacted.make(`cdc_${base62(TOKEN_CHARS)}`)

/** A web session id (the cookie's value). */
export const mintSessionId = (): Redacted.Redacted<string> => Redacted.make(base62(TOKEN_CHARS))

/** The token of a one-time sign-in link. */
export const mintSignInToken = (): Redacted.Redacted<string> => Redacted.make(base62(TOKEN_CHARS))

/** The SHA-256 hex digest the store keeps in place of a secret. */
export const hashSecret = (secret: Redacted.Redacted<string>): string =>
  createHash("sha256").update(Redacted.value(secret), "utf8").digest("hex")

/** A fresh random id with a readable prefix (`usr_…`, `grt_…`). Ids are not secrets. */
export const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString("hex")}`

/** The alphabet of user codes: consonants only (no vowels, so no words; no look-alikes such as 0/O, 1/I). */
export const USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"

/** A short, human-friendly user code, `WDJB-MJHT`. */
export const mintUserCode = (): string => {
  let out = ""
  while (out.length < 8) {
    for (const b of randomBytes(16)) if (b < 240 && out.length < 8) out += USER_CODE_ALPHABET[b % 20]
  }
  return `${out.slice(0, 4)}-${out.slice(4)}`
}

/**
 * A user code as typed by a person, reduced to its 8 letters: case and any separators are ignored
 * (`wdjb mjht`, `WDJB-MJHT` and `wdjbmjht` are the same code). Anything else is not a code.
 */
export const normalizeUserCode = (typed: string): string | undefined => {
  const letters = typed.toUpperCase().replace(/[\s-]/g, "")
  return letters.length === 8 && [...letters].every((c) => USER_CODE_ALPHABET.includes(c)) ? letters : undefined
}

/** The hash a user code is stored and looked up under (of its normalized form). */
export const hashUserCode = (normalized: string): string =>
  createHash("sha256").update(`user-code:${normalized}`, "utf8").digest("hex")

/**
 * The CSRF token of a web session, derived from the session id (HMAC-SHA256 keyed by it): a page embeds it in
 * every form, and a cross-site attacker, who cannot read the HttpOnly cookie, cannot compute it. Nothing extra
 * is stored; signing out (a new session id) changes it.
 */
export const csrfToken = (sessionId: Redacted.Redacted<string>): string =>
  createHmac("sha256", Redacted.value(sessionId)).update("cmdop-csrf-v1").digest("base64url")

/** Whether `presented` is the session's CSRF token (constant-time). */
export const verifyCsrf = (sessionId: Redacted.Redacted<string>, presented: string): boolean => {
  const expected = Buffer.from(csrfToken(sessionId))
  const given = Buffer.from(presented)
  return expected.length === given.length && timingSafeEqual(expected, given)
}
