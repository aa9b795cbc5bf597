import { ShareError } from "@cmdop/domain/ShareError"
import * as ShareTtl from "@cmdop/domain/ShareTtl"
import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"

const right = <A>(either: Either.Either<A, ShareError>): A => {
  if (Either.isLeft(either)) assert.fail(`expected a TTL, got: ${either.left.message}`)
  return (either as Either.Right<ShareError, A>).right
}
const left = <A>(either: Either.Either<A, ShareError>): ShareError => {
  assert.isTrue(Either.isLeft(either), `expected an error, got ${JSON.stringify(either)}`)
  const error = (either as Either.Left<ShareError, A>).left
  assert.strictEqual(error.reason, "InvalidTtl")
  return error
}

const units = { s: 1, m: 60, h: 3600, d: 86400 } as const
const unit = FastCheck.constantFrom(...(Object.keys(units) as Array<keyof typeof units>))

describe("ShareTtl", () => {
  it("the spec's examples", () => {
    assert.strictEqual(right(ShareTtl.parse("90m")), 2 * 3600)
    assert.strictEqual(right(ShareTtl.parse("1s")), 3600)
    assert.strictEqual(right(ShareTtl.parse("24h")), 24 * 3600)
    assert.strictEqual(right(ShareTtl.parse("4h")), 4 * 3600)
    assert.strictEqual(right(ShareTtl.parse("2d")), 48 * 3600)
    assert.strictEqual(right(ShareTtl.parse("1h30m")), 2 * 3600)
    assert.strictEqual(right(ShareTtl.parse("1.5h")), 2 * 3600)
    assert.strictEqual(right(ShareTtl.parse(" 24H ")), 24 * 3600)
    assert.strictEqual(right(ShareTtl.parse("0")), 0)
    assert.strictEqual(right(ShareTtl.parse("720h")), 720 * 3600)
    assert.strictEqual(right(ShareTtl.parse("30d")), 720 * 3600)
    assert.strictEqual(ShareTtl.defaultSeconds, 24 * 3600)
    assert.strictEqual(ShareTtl.format(0), "never")
    assert.strictEqual(ShareTtl.format(7200), "2h")
  })

  it("garbage, negatives, bare numbers and more than 720 h are errors that name the accepted forms", () => {
    for (const bad of ["", "-1h", "-5", "abc", "24", "1e3h", "h", "1w", "1h-", "∞", "24 h x", "NaN", "1.h"]) {
      const error = left(ShareTtl.parse(bad))
      assert.include(error.message, JSON.stringify(bad))
      assert.include(error.message, '"24h"')
    }
    assert.include(left(ShareTtl.parse("24")).message, 'add a unit, e.g. "24h"')
    for (const tooLong of ["721h", "31d", "720h1s", "99999999999999999999d"]) {
      assert.include(left(ShareTtl.parse(tooLong)).message, "maximum of 720h")
    }
  })

  it.prop("hoursOf rounds any duration up to whole hours", [FastCheck.nat()], ([seconds]) => {
    const hours = ShareTtl.hoursOf(seconds)
    assert.isTrue(Number.isInteger(hours))
    assert.isTrue(hours * 3600 >= seconds, "never shorter than asked")
    assert.isTrue(seconds === 0 ? hours === 0 : (hours - 1) * 3600 < seconds, "less than an hour longer")
  })

  it.prop(
    "roundUp accepts exactly 0..720 h and yields whole hours",
    [FastCheck.double({ min: -1e7, max: 1e7, noNaN: true })],
    ([seconds]) => {
      const result = ShareTtl.roundUp(seconds)
      if (seconds < 0 || Math.ceil(seconds / 3600) > 720) {
        left(result)
      } else {
        const granted = right(result)
        assert.strictEqual(granted % 3600, 0)
        assert.strictEqual(granted, ShareTtl.hoursOf(seconds) * 3600)
      }
    }
  )

  it.prop(
    "parse agrees with roundUp for any amount in any unit",
    [FastCheck.nat({ max: 100_000 }), unit],
    ([amount, u]) => {
      const parsed = ShareTtl.parse(`${amount}${u}`)
      const expected = ShareTtl.roundUp(amount * units[u])
      if (Either.isRight(expected)) assert.strictEqual(right(parsed), expected.right)
      else left(parsed)
    }
  )

  it.prop("parse never throws and either succeeds within bounds or explains itself", [FastCheck.string()], ([text]) => {
    const parsed = ShareTtl.parse(text)
    if (Either.isRight(parsed)) {
      assert.isTrue(parsed.right >= 0 && parsed.right <= ShareTtl.maxSeconds && parsed.right % 3600 === 0)
    } else {
      const message = parsed.left.message
      assert.isTrue(message.includes(ShareTtl.acceptedForms) || message.includes("maximum of 720h"), message)
    }
  })
})
