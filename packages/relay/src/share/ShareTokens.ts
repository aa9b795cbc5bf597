/**
 * Share tokens: compact JWTs the relay signs and checks with `jose`.
 *
 * HS256 with a 32-byte random secret per signing key. The relay is the only party that ever signs or verifies a
 * share token (a guest presents it back to the relay that minted it, or to another node on the same store), so
 * a public-key scheme buys nothing and would add key-encoding code; the secret lives in the relay store next to
 * the rest of its secrets. Keys carry a `kid` header so several can be live at once (rotation), and retiring one
 * kills every token it signed.
 *
 * Verification is deliberately narrow: the token must be three canonical base64url parts (so no two spellings of
 * one token exist), the header exactly `{alg: "HS256", kid, typ: "cmdop-share+jwt"}`, the algorithm allow-list
 * exactly HS256 (`none`, HS384/512 and every asymmetric algorithm are refused before any key is looked at), and
 * the claims exactly the `ShareClaims` schema after the signature checked out. Every failure is a `ShareError`;
 * nothing here throws on any input.
 */
import { MachineId } from "@cmdop/domain/Machine"
import { ShareError } from "@cmdop/domain/ShareError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { errors, type JWTPayload, jwtVerify, SignJWT } from "jose"
import { randomBytes } from "node:crypto"
import type { NewSigningKey, SigningKey } from "../store/records.js"

/** The one algorithm share tokens are signed and accepted with. */
export const algorithm = "HS256"
/** The `typ` header of a share token, so no other JWT the relay might sign can pass as one. */
export const tokenType = "cmdop-share+jwt"
/** Longer input is refused without parsing (a real token is about 330 characters). */
export const maxTokenLength = 2048

/** A share link's id as the store mints it: `sl_` and 24 hex digits. */
export const LinkId = Schema.String.pipe(Schema.pattern(/^sl_[0-9a-f]{24}$/))

const seconds = Schema.Int.pipe(Schema.between(0, 2 ** 40))

/**
 * The claims of a share token, exactly (unknown claims are refused): the link id (`jti`), the machine (`sub`),
 * the workspace (`wsid`), the workspace API key generation it was minted under (`gen`), issue time and expiry in
 * seconds since the epoch (`exp` absent: never expires).
 */
export const ShareClaims = Schema.Struct({
  jti: LinkId,
  sub: MachineId,
  wsid: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,64}$/)),
  gen: Schema.Int.pipe(Schema.between(1, 2 ** 31 - 1)),
  iat: seconds,
  exp: Schema.optionalWith(seconds, { exact: true })
}).pipe(Schema.filter((c) => c.exp === undefined || c.exp > c.iat || "exp must be after iat"))
export type ShareClaims = typeof ShareClaims.Type

const Header = Schema.Struct({
  alg: Schema.Literal(algorithm),
  kid: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,64}$/)),
  typ: Schema.Literal(tokenType)
})

const strict = { onExcessProperty: "error" } as const
const decodeClaims = Schema.decodeUnknownEither(ShareClaims, strict)
const decodeHeader = Schema.decodeUnknownEither(Header, strict)

const malformed = () => new ShareError({ reason: "Malformed" })
const badSignature = () => new ShareError({ reason: "BadSignature" })

/**
 * A fresh signing key: a kid and 32 random bytes (base64url) of HS256 secret. The kid is `sk_` and 16 random hex
 * digits; with `after`, it sorts after that kid (for a key created in the same millisecond as `after`'s, which the
 * store's "newest, ties broken by the greater kid" rule must still make current).
 */
export const generateKey = (after?: string): NewSigningKey => ({
  kid: (after === undefined ? undefined : kidAfter(after)) ?? `sk_${randomBytes(8).toString("hex")}`,
  algorithm,
  material: Redacted.make(randomBytes(32).toString("base64url"))
})

const kidAfter = (previous: string): string | undefined => {
  const match = /^sk_([0-9a-f]{16})$/.exec(previous)
  if (match === null) return undefined
  const next = BigInt(`0x${match[1]}`) + 1n + BigInt(randomBytes(4).readUInt32BE())
  return next < 2n ** 64n ? `sk_${next.toString(16).padStart(16, "0")}` : undefined
}

/** The key's HMAC secret, when it is an HS256 key with 32 bytes of material. */
const secretOf = (key: SigningKey): Uint8Array | undefined => {
  if (key.algorithm !== algorithm) return undefined
  const bytes = Buffer.from(Redacted.value(key.material), "base64url")
  return bytes.length === 32 ? new Uint8Array(bytes) : undefined
}

/** Signs `claims` with `key`. Dies only when the key itself is unusable (an invariant of `generateKey`). */
export const sign = (key: SigningKey, claims: ShareClaims): Effect.Effect<string> =>
  Effect.suspend(() => {
    const secret = secretOf(key)
    if (secret === undefined) return Effect.dieMessage(`signing key ${key.kid} is not a 32-byte ${algorithm} key`)
    const { exp, ...rest } = claims
    const payload: JWTPayload = exp === undefined ? { ...rest } : { ...rest, exp }
    return Effect.tryPromise(() =>
      new SignJWT(payload).setProtectedHeader({ alg: algorithm, kid: key.kid, typ: tokenType }).sign(secret)
    ).pipe(Effect.orDie)
  })

const segment = /^[A-Za-z0-9_-]+$/
/** True when `part` is base64url without padding, spelled the one way its bytes encode. */
const canonical = (part: string): boolean =>
  segment.test(part) && Buffer.from(part, "base64url").toString("base64url") === part

const utf8 = new TextDecoder("utf-8", { fatal: true })
/** A base64url part as a JSON object, or undefined. */
const jsonObject = (part: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(utf8.decode(Buffer.from(part, "base64url")))
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

/** The token's header if it is well-formed, for the kid; nothing is trusted before the signature is checked. */
const headerOf = (token: unknown): Either.Either<typeof Header.Type, ShareError> => {
  if (typeof token !== "string" || token.length > maxTokenLength) return Either.left(malformed())
  const parts = token.split(".")
  if (parts.length !== 3 || !parts.every(canonical)) return Either.left(malformed())
  const header = jsonObject(parts[0]!)
  if (header === undefined) return Either.left(malformed())
  if (header.alg !== algorithm) return Either.left(badSignature())
  return Either.mapLeft(decodeHeader(header), malformed)
}

/**
 * The kid a token names when its shape and header are acceptable, else why not (`Malformed`, `BadSignature` for
 * another algorithm). Not a verification: a cheap first check before any key is loaded.
 */
export const inspect = (token: string): Either.Either<string, ShareError> => Either.map(headerOf(token), (h) => h.kid)

/** The kid a token names, if it is well-formed (for diagnostics and tests; not a verification). */
export const kidOf = (token: string): string | undefined => Either.getOrUndefined(inspect(token))

/**
 * Verifies `token` against `keys` at `now` (ms since the epoch; `jose` is given it, so `TestClock` governs
 * expiry): `Malformed`, `BadSignature` (unknown kid, wrong signature, any other algorithm), `Expired` (signature
 * valid; `subject` is the link id, `at` the expiry), `SigningKeyRetired` (signature valid, its key retired since;
 * `subject` is the link id), or the claims.
 */
export const verify = (
  token: string,
  keys: ReadonlyArray<SigningKey>,
  now: number
): Effect.Effect<ShareClaims, ShareError> =>
  Effect.gen(function* () {
    const header = yield* headerOf(token)
    const key = keys.find((k) => k.kid === header.kid)
    const secret = key && secretOf(key)
    if (key === undefined || secret === undefined) return yield* badSignature()
    const verified = yield* Effect.tryPromise({
      try: () => jwtVerify(token, secret, { algorithms: [algorithm], typ: tokenType, currentDate: new Date(now) }),
      catch: (error) => {
        if (error instanceof errors.JWTExpired) {
          return Either.match(decodeClaims(error.payload), {
            onLeft: malformed,
            onRight: (claims) =>
              new ShareError({
                reason: "Expired",
                subject: claims.jti,
                ...(claims.exp === undefined ? {} : { at: claims.exp * 1000 })
              })
          })
        }
        return error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JOSEAlgNotAllowed
          ? badSignature()
          : malformed()
      }
    })
    const claims = yield* Either.mapLeft(decodeClaims(verified.payload), malformed)
    if (key.retiredAt !== undefined) return yield* new ShareError({ reason: "SigningKeyRetired", subject: claims.jti })
    return claims
  })
