/**
 * Password hashing with Argon2id (`@node-rs/argon2`, prebuilt native binaries), at the library's defaults, which
 * are OWASP's recommendation (19 MiB memory, 2 iterations, 1 lane): about 50 ms per hash on one core of the
 * development machine. Hashing runs on libuv's thread pool, not on the event loop. Passwords travel as `Redacted`
 * and never reach a log, an error or the store; only the PHC string (`$argon2id$v=19$…`) is stored.
 */
import { hash as argonHash, verify as argonVerify } from "@node-rs/argon2"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"

/** `Algorithm.Argon2id` of the binding (a const enum, which isolated modules cannot read). */
const ARGON2ID = 2

/** The shortest password accepted. */
export const MIN_LENGTH = 10
/** The longest (Argon2 takes any length; this bounds the work one request can ask for). */
export const MAX_LENGTH = 1024

/** Why a new password is refused, as a one-line message with a hint; `undefined` when it is acceptable. */
export const weakness = (password: Redacted.Redacted<string>): string | undefined => {
  const value = Redacted.value(password)
  if (value.length < MIN_LENGTH) return `the password is too short; use at least ${MIN_LENGTH} characters`
  if (value.length > MAX_LENGTH) return `the password is too long; use at most ${MAX_LENGTH} characters`
  return undefined
}

/** The Argon2id PHC string of a password. A failure of the native binding is a defect. */
export const hash = (password: Redacted.Redacted<string>): Effect.Effect<Redacted.Redacted<string>> =>
  Effect.map(
    Effect.promise(() => argonHash(Redacted.value(password), { algorithm: ARGON2ID })),
    Redacted.make
  )

/** Whether `password` matches the stored hash. A malformed stored hash does not match. */
export const verify = (
  stored: Redacted.Redacted<string>,
  password: Redacted.Redacted<string>
): Effect.Effect<boolean> =>
  Effect.promise(() => argonVerify(Redacted.value(stored), Redacted.value(password)).catch(() => false))

/**
 * A hash of a random password, computed once: verifying against it when the email is unknown makes a failed
 * sign-in take as long as one with a wrong password, so timing does not reveal which addresses have accounts.
 */
export const decoy: Effect.Effect<Redacted.Redacted<string>> = Effect.cached(
  hash(Redacted.make(randomBytes(32).toString("hex")))
).pipe(Effect.runSync)
