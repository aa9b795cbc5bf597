import type { ShareError } from "@cmdop/domain/ShareError"
import { SigningKey } from "@cmdop/relay/RelayStore"
import * as ShareTokens from "@cmdop/relay/share/ShareTokens"
import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"
import { SignJWT } from "jose"
import { createHmac, randomBytes, randomUUID } from "node:crypto"

const keyOf = (kid: string, retiredAt?: number) =>
  new SigningKey({
    kid,
    algorithm: "HS256",
    material: Redacted.make(randomBytes(32).toString("base64url")),
    createdAt: 0,
    ...(retiredAt === undefined ? {} : { retiredAt })
  })
const key = keyOf("sk_test")
const keys = [key, keyOf("sk_other")]
const secret = Buffer.from(Redacted.value(key.material), "base64url")

const now = Date.parse("2026-04-25T12:34:56Z")
const iat = now / 1000
const claims: ShareTokens.ShareClaims = {
  jti: `sl_${randomBytes(12).toString("hex")}`,
  sub: randomUUID() as ShareTokens.ShareClaims["sub"],
  wsid: `ws_${randomBytes(12).toString("hex")}`,
  gen: 3,
  iat,
  exp: iat + 3600
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
const header = { alg: "HS256", kid: key.kid, typ: ShareTokens.tokenType }
/** A token signed with HMAC-SHA256 over whatever header and payload, as a forger with the key could. */
const hmac = (h: unknown, p: unknown, with_: Uint8Array = secret) => {
  const input = `${b64(h)}.${b64(p)}`
  return `${input}.${createHmac("sha256", with_).update(input).digest("base64url")}`
}

/** One genuine token, for the mutation properties. */
const signed = await Effect.runPromise(ShareTokens.sign(key, claims))
const verify = (token: string, at = now) => ShareTokens.verify(token, keys, at)

/** The reason `token` is refused with, asserting it is a typed failure (never a success, never a defect). */
const refusal = (token: string, at = now): Effect.Effect<ShareError["reason"]> =>
  Effect.map(Effect.exit(verify(token, at)), (exit) => {
    if (Exit.isSuccess(exit)) assert.fail(`accepted ${JSON.stringify(token)}`)
    const cause = (exit as Exit.Failure<unknown, ShareError>).cause
    if (!Cause.isFailType(cause)) assert.fail(`not a typed failure: ${Cause.pretty(cause)}`)
    return (cause as Cause.Fail<ShareError>).error.reason
  })
const rejected = (token: string, at = now) =>
  Effect.map(refusal(token, at), (reason) => assert.include(["Malformed", "BadSignature"], reason, token))

describe("ShareTokens", () => {
  it.effect("a signed token verifies to its claims; the header is exactly alg, kid, typ", () =>
    Effect.gen(function* () {
      const token = yield* ShareTokens.sign(key, claims)
      assert.deepStrictEqual(yield* verify(token), claims)
      assert.strictEqual(ShareTokens.kidOf(token), key.kid)
      const [h] = token.split(".")
      assert.deepStrictEqual(JSON.parse(Buffer.from(h!, "base64url").toString()), header)
      // The hand-made HMAC token of the tests is the same thing.
      assert.deepStrictEqual(yield* verify(hmac(header, claims)), claims)
    })
  )

  it.effect.prop(
    "round trip: any claims sign and verify to themselves while valid",
    [Arbitrary.make(ShareTokens.ShareClaims)],
    ([any]) =>
      Effect.gen(function* () {
        const token = yield* ShareTokens.sign(key, any)
        assert.deepStrictEqual(yield* verify(token, any.iat * 1000), any)
        if (any.exp !== undefined) assert.strictEqual(yield* refusal(token, any.exp * 1000), "Expired")
      }),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect("expiry: valid until exp (exclusive), then Expired with the link id and time", () =>
    Effect.gen(function* () {
      const token = yield* ShareTokens.sign(key, claims)
      yield* verify(token, claims.exp! * 1000 - 1)
      const error = yield* Effect.flip(verify(token, claims.exp! * 1000))
      assert.strictEqual(error.reason, "Expired")
      assert.strictEqual(error.subject, claims.jti)
      assert.strictEqual(error.at, claims.exp! * 1000)
      assert.strictEqual(error.message, "share link expired at 2026-04-25T13:34:56Z")
      const { exp: _, ...forever } = claims
      yield* verify(yield* ShareTokens.sign(key, forever), now + 1e12)
    })
  )

  it.effect("a retired key's tokens are SigningKeyRetired; an unknown kid is BadSignature", () =>
    Effect.gen(function* () {
      const token = yield* ShareTokens.sign(key, claims)
      const retired = new SigningKey({ ...key, retiredAt: 1 })
      const error = yield* Effect.flip(ShareTokens.verify(token, [retired], now))
      assert.strictEqual(error.reason, "SigningKeyRetired")
      assert.strictEqual(error.subject, claims.jti)
      assert.strictEqual((yield* Effect.flip(ShareTokens.verify(token, [], now))).reason, "BadSignature")
      assert.strictEqual(
        (yield* Effect.flip(ShareTokens.verify(token, [keyOf("sk_test")], now))).reason,
        "BadSignature"
      )
    })
  )

  it.effect.prop(
    "flipping any character of a valid token is refused",
    [FastCheck.nat(), FastCheck.integer({ min: 1, max: 0xffff })],
    ([position, delta]) =>
      Effect.gen(function* () {
        const token = signed
        const i = position % token.length
        const mutated =
          token.slice(0, i) + String.fromCharCode((token.charCodeAt(i) + delta) % 0x10000) + token.slice(i + 1)
        yield* rejected(mutated)
      }),
    { fastCheck: { numRuns: 200 } }
  )

  it.effect("every character of a valid token, replaced by other base64url characters, is refused", () =>
    Effect.gen(function* () {
      const token = signed
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
      for (let i = 0; i < token.length; i += 1) {
        // The neighbours flip the lowest bits (the ones a lenient decoder ignores), the others the highest.
        const at = alphabet.indexOf(token[i]!)
        for (const step of [1, 2, 3, 16, 32]) {
          const c = token[i] === "." ? alphabet[step]! : alphabet[at ^ step]!
          yield* rejected(token.slice(0, i) + c + token.slice(i + 1))
        }
      }
    })
  )

  it.effect("a non-canonical spelling of a genuine signature is refused (no token has two spellings)", () =>
    Effect.gen(function* () {
      const token = yield* ShareTokens.sign(key, claims)
      const signature = token.split(".")[2]!
      // 32 bytes are 43 characters; the last one carries 2 unused bits. Setting them decodes to the same bytes.
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
      const last = alphabet.indexOf(signature.at(-1)!)
      const sibling = alphabet[last | 1]! === signature.at(-1) ? alphabet[last | 2]! : alphabet[last | 1]!
      const respelled = token.slice(0, -1) + sibling
      assert.deepStrictEqual(
        Buffer.from(respelled.split(".")[2]!, "base64url"),
        Buffer.from(signature, "base64url"),
        "same bytes"
      )
      assert.strictEqual(yield* refusal(respelled), "Malformed")
    })
  )

  it.effect.prop(
    "changing any claim without the key is refused",
    [
      FastCheck.constantFrom("jti", "sub", "wsid", "gen", "iat", "exp", "extra"),
      FastCheck.oneof(FastCheck.jsonValue(), FastCheck.constant(undefined))
    ],
    ([claim, value]) =>
      Effect.gen(function* () {
        const token = signed
        const changed: Record<string, unknown> = { ...claims, [claim]: value }
        if (value === undefined) delete changed[claim]
        if (JSON.stringify(changed) === JSON.stringify(claims)) return
        const [h, , s] = token.split(".")
        yield* rejected(`${h}.${b64(changed)}.${s}`)
      }),
    { fastCheck: { numRuns: 200 } }
  )

  it.effect.prop(
    "re-signed with another secret (same kid or another) is refused",
    [FastCheck.uint8Array({ minLength: 1, maxLength: 64 }), FastCheck.constantFrom("sk_test", "sk_other", "sk_x")],
    ([other, kid]) => rejected(hmac({ ...header, kid }, { ...claims, exp: claims.exp! + 3600 }, other)),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect("alg none, other HMAC sizes and asymmetric algorithms are refused, even with the right secret", () =>
    Effect.gen(function* () {
      const payload = b64(claims)
      for (const alg of ["none", "None", "NONE", "nOnE", ""]) {
        for (const signature of ["AA", createHmac("sha256", secret).update("x").digest("base64url")]) {
          assert.strictEqual(yield* refusal(`${b64({ ...header, alg })}.${payload}.${signature}`), "BadSignature")
        }
        yield* rejected(`${b64({ ...header, alg })}.${payload}.`)
        yield* rejected(`${b64({ ...header, alg })}.${payload}.x`)
      }
      for (const alg of ["HS384", "HS512"]) {
        const token = yield* Effect.promise(() =>
          new SignJWT({ ...claims } as Record<string, unknown>)
            .setProtectedHeader({ alg, kid: key.kid, typ: ShareTokens.tokenType })
            .sign(new Uint8Array(secret))
        )
        assert.strictEqual(yield* refusal(token), "BadSignature")
      }
      // Algorithm confusion: an asymmetric label over an HMAC made with the secret.
      for (const alg of ["RS256", "ES256", "EdDSA", "PS256", "hs256"]) {
        assert.strictEqual(yield* refusal(hmac({ ...header, alg }, claims)), "BadSignature")
      }
    })
  )

  it.effect("a correctly signed token with an unexpected header or claims is Malformed", () =>
    Effect.gen(function* () {
      const { exp: _, ...noExp } = claims
      const headers = [
        { ...header, crit: ["b64"], b64: false },
        { ...header, jku: "https://evil.example/keys" },
        { alg: "HS256", kid: key.kid },
        { ...header, typ: "JWT" },
        { ...header, kid: 7 }
      ]
      for (const h of headers) assert.include(["Malformed", "BadSignature"], yield* refusal(hmac(h, claims)))
      const payloads: Array<unknown> = [
        { ...claims, admin: true },
        { ...claims, sub: "not-a-uuid" },
        { ...claims, jti: "sl_short" },
        { ...claims, gen: 0 },
        { ...claims, gen: "3" },
        { ...claims, iat: 1.5 },
        { ...claims, exp: claims.iat },
        { ...noExp, nbf: claims.iat },
        { jti: claims.jti },
        [claims],
        "claims",
        null
      ]
      for (const p of payloads) assert.strictEqual(yield* refusal(hmac(header, p)), "Malformed", JSON.stringify(p))
      assert.strictEqual(yield* refusal(hmac([header], claims)), "Malformed")
    })
  )

  it.effect("fuzz: thousands of random strings and JWT-shaped inputs never verify and never die", () => {
    const part = FastCheck.oneof(
      FastCheck.base64String({ maxLength: 120 }).map((s) =>
        s.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
      ),
      FastCheck.jsonValue().map(b64),
      FastCheck.constantFrom(b64(header), b64(claims), b64({ ...header, alg: "none" }), "", "eyJ"),
      FastCheck.string({ maxLength: 40 })
    )
    const input = FastCheck.oneof(
      FastCheck.string({ maxLength: 300 }),
      FastCheck.string({ unit: "binary", maxLength: 300 }),
      FastCheck.array(part, { minLength: 1, maxLength: 5 }).map((parts) => parts.join(".")),
      FastCheck.tuple(part, part).map(
        ([h, p]) => `${h}.${p}.${createHmac("sha256", secret).update(`${h}.${p}`).digest("base64url")}`
      ),
      FastCheck.string({ maxLength: 10 }).map((s) => "a".repeat(ShareTokens.maxTokenLength) + s)
    )
    return Effect.gen(function* () {
      const started = Date.now()
      const samples = FastCheck.sample(input, { numRuns: 4000, seed: 42 })
      for (const token of samples) {
        const exit = yield* Effect.exit(verify(token))
        if (Exit.isSuccess(exit)) {
          // Only a genuinely signed, well-formed token may pass: a hand-made HMAC over exactly our header and claims.
          assert.strictEqual(token, hmac(header, claims), `accepted ${JSON.stringify(token)}`)
        } else {
          if (!Cause.isFailType(exit.cause))
            assert.fail(`died on ${JSON.stringify(token)}: ${Cause.pretty(exit.cause)}`)
        }
      }
      assert.isBelow(Date.now() - started, 10_000)
    })
  })
})
