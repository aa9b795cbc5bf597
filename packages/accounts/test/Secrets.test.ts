import * as Email from "@cmdop/accounts/Email"
import * as Password from "@cmdop/accounts/Password"
import * as Secrets from "@cmdop/accounts/Secrets"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

describe("Secrets", () => {
  it("tokens have their prefixes and 256 bits, and differ every time", () => {
    const access = Redacted.value(Secrets.mintAccessToken())
    assert.match(access, /^cmdop_[0-9A-Za-z]{43}$/)
    assert.match(Redacted.value(Secrets.mintRefreshToken()), /^clitr_[0-9A-Za-z]{43}$/)
    assert.notStrictEqual(access, Redacted.value(Secrets.mintAccessToken()))
    assert.match(Secrets.hashSecret(Redacted.make(access)), /^[0-9a-f]{64}$/)
  })

  it.prop("user codes are XXXX-XXXX of consonants and survive any way of typing them", [Schema.Boolean], ([lower]) => {
    const code = Secrets.mintUserCode()
    assert.match(code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/)
    const typed = lower ? ` ${code.toLowerCase().replace("-", " ")} ` : code.replace("-", "")
    assert.strictEqual(Secrets.normalizeUserCode(typed), code.replace("-", ""))
  })

  it("anything else is not a user code", () => {
    for (const typed of ["", "WDJB-MJH", "WDJB-MJHTX", "WDJB-MJH0", "AEIO-UUUU"]) {
      assert.isUndefined(Secrets.normalizeUserCode(typed), typed)
    }
  })

  it("a CSRF token verifies for its session only", () => {
    const session = Secrets.mintSessionId()
    const token = Secrets.csrfToken(session)
    assert.isTrue(Secrets.verifyCsrf(session, token))
    assert.isFalse(Secrets.verifyCsrf(Secrets.mintSessionId(), token))
    assert.isFalse(Secrets.verifyCsrf(session, token.slice(1)))
  })
})

describe("Email", () => {
  it("input is trimmed and lower-cased; non-addresses are refused", () => {
    assert.strictEqual(Either.getOrThrow(Email.fromInput("  Alice@Example.COM ")), "alice@example.com")
    assert.isTrue(Either.isLeft(Email.fromInput("alice")))
    assert.isTrue(Either.isLeft(Email.fromInput("a b@example.com")))
    assert.strictEqual(Email.domainOf(Email.Email.make("a@corp.example")), "corp.example")
  })
})

describe("Password", () => {
  it.effect("Argon2id hashes verify the right password only; short ones are refused", () =>
    Effect.gen(function* () {
      const password = Redacted.make("a long enough password")
      const hash = yield* Password.hash(password)
      assert.match(Redacted.value(hash), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
      assert.isTrue(yield* Password.verify(hash, password))
      assert.isFalse(yield* Password.verify(hash, Redacted.make("a long enough passworD")))
      assert.isFalse(yield* Password.verify(Redacted.make("not a hash"), password))
      assert.isFalse(yield* Password.verify(yield* Password.decoy, password))
      assert.isString(Password.weakness(Redacted.make("short")))
      assert.isUndefined(Password.weakness(password))
    })
  )
})
