/**
 * Share-link lifetimes (spec 5): hours-only granularity, any duration rounds UP to whole hours (`90m` → 2 h,
 * `1s` → 1 h), `0` means never expires, the default is 24 h and the upper bound 720 h. `parse` reads what a user
 * types; `roundUp` is what the relay applies to the seconds it is sent. Pure.
 */
import * as Either from "effect/Either"
import { ShareError } from "./ShareError.js"

export const secondsPerHour = 3600
/** The longest lifetime a link may have, in hours (30 days). */
export const maxHours = 720
export const maxSeconds = maxHours * secondsPerHour
/** The lifetime when none is asked for: 24 h. */
export const defaultSeconds = 24 * secondsPerHour

/** The forms `parse` accepts, as error messages and help text say them. */
export const acceptedForms =
  'a duration with units s, m, h or d ("90m", "24h", "2d", "1h30m"), or 0 for a link that never expires; at most 720h (30 days)'

const units: Record<string, number> = { s: 1, m: 60, h: secondsPerHour, d: 24 * secondsPerHour }
const whole = /^(?:\d+(?:\.\d+)?[smhd])+$/
const part = /(\d+(?:\.\d+)?)([smhd])/g

const invalid = (input: string, detail: string) => new ShareError({ reason: "InvalidTtl", subject: input, detail })

/** Whole hours a lifetime of `seconds` counts as: rounded up, `0` stays 0 (never expires). */
export const hoursOf = (seconds: number): number => Math.ceil(seconds / secondsPerHour)

/**
 * The lifetime the relay grants for `seconds` asked for: rounded up to whole hours, in seconds; 0 for never.
 * Fails for a negative or non-finite number, or one that rounds to more than 720 h.
 */
export const roundUp = (seconds: number): Either.Either<number, ShareError> => {
  if (!Number.isFinite(seconds) || seconds < 0)
    return Either.left(invalid(String(seconds), `expected ${acceptedForms}`))
  const hours = hoursOf(seconds)
  return hours > maxHours
    ? Either.left(invalid(String(seconds), `${hours}h is longer than the maximum of ${maxHours}h (30 days)`))
    : Either.right(hours * secondsPerHour)
}

/**
 * A TTL as typed (`--ttl 24h`) → the lifetime in seconds, rounded up to whole hours (0: never expires). Units
 * are case-insensitive and may be combined (`1d12h`); a bare number other than 0 is an error (is `24` seconds or
 * hours?), as are negative values and anything over 720 h. The error names the accepted forms.
 */
export const parse = (input: string): Either.Either<number, ShareError> => {
  const text = input.trim().toLowerCase()
  if (/^0+(?:\.0+)?$/.test(text)) return Either.right(0)
  if (/^\d+(?:\.\d+)?$/.test(text))
    return Either.left(invalid(input, `add a unit, e.g. "${text}h"; expected ${acceptedForms}`))
  if (text.length > 64 || !whole.test(text)) return Either.left(invalid(input, `expected ${acceptedForms}`))
  let seconds = 0
  for (const [, amount, unit] of text.matchAll(part)) seconds += Number(amount) * units[unit!]!
  return Either.mapLeft(roundUp(seconds), (error) => invalid(input, error.detail ?? acceptedForms))
}

/** `7200` → `"2h"`, `0` → `"never"`: how a granted lifetime is shown. */
export const format = (seconds: number): string => (seconds === 0 ? "never" : `${hoursOf(seconds)}h`)
