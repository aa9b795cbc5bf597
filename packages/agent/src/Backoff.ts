/**
 * Reconnect delays for the agent daemon (spec 8): exponential backoff with full jitter. Attempt n (0-based) waits a
 * uniformly random time in [0, min(cap, base · 2ⁿ)), 0.5 s base and a 30 s cap by default, so after a relay restart
 * every agent comes back without a thundering herd. The daemon resets the attempt count after a successful
 * handshake.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"

export interface Policy {
  /** The ceiling of the first delay. */
  readonly base: Duration.DurationInput
  /** No delay ever exceeds this. */
  readonly cap: Duration.DurationInput
}

/** 0.5 s doubling to a 30 s cap. */
export const defaultPolicy: Policy = { base: Duration.millis(500), cap: Duration.seconds(30) }

/** The upper bound, in milliseconds, of the delay before retry number `attempt` (0-based): min(cap, base · 2ⁿ). */
export const ceilingMillis = (policy: Policy, attempt: number): number => {
  const base = Duration.toMillis(policy.base)
  const cap = Duration.toMillis(policy.cap)
  if (base <= 0 || cap <= 0) return 0
  // 2^1100 is Infinity; clamping the exponent keeps the product finite for any attempt count.
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 1_000)
  return Math.min(cap, base * Math.pow(2, exponent))
}

/**
 * The delay before retry number `attempt` for a uniform `random` in [0, 1): `random · ceiling`, so always within
 * [0, ceilingMillis(policy, attempt)]. Pure; `delay` draws `random` from Effect's `Random`.
 */
export const delayMillis = (policy: Policy, attempt: number, random: number): number =>
  Math.floor(Math.min(Math.max(random, 0), 1) * ceilingMillis(policy, attempt))

/** Draws the delay before retry number `attempt`. */
export const delay = (policy: Policy, attempt: number): Effect.Effect<Duration.Duration> =>
  Effect.map(Random.next, (r) => Duration.millis(delayMillis(policy, attempt, r)))

/** A retry counter: `next` sleeps the jittered delay of the current attempt and counts it; `reset` starts over. */
export interface Backoff {
  /** Sleeps before the next retry; returns the delay it slept. */
  readonly next: Effect.Effect<Duration.Duration>
  /** Back to attempt 0, e.g. after a successful handshake. */
  readonly reset: Effect.Effect<void>
  /** How many delays were taken since the last reset. */
  readonly attempts: Effect.Effect<number>
}

/** A fresh counter for `policy`. */
export const make = (policy: Policy = defaultPolicy): Effect.Effect<Backoff> =>
  Effect.map(Ref.make(0), (attempts) => ({
    next: Effect.gen(function* () {
      const n = yield* Ref.getAndUpdate(attempts, (a) => a + 1)
      const d = yield* delay(policy, n)
      yield* Effect.sleep(d)
      return d
    }),
    reset: Ref.set(attempts, 0),
    attempts: Ref.get(attempts)
  }))

/** The same delays as a `Schedule` (recurs forever; output: the attempt number), for `Effect.retry`/`repeat`. */
export const schedule = (policy: Policy = defaultPolicy): Schedule.Schedule<number> =>
  Schedule.modifyDelayEffect(Schedule.forever, (attempt) => delay(policy, attempt))
