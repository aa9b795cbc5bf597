/**
 * Reconnect delays for the agent daemon: exponential backoff with full jitter, on `Schedule`. Retry n (0-based)
 * waits a uniformly random time in [0, min(cap, base · 2ⁿ)], 0.5 s base and a 30 s cap by default, so after a relay
 * restart the agents come back spread out rather than all at once. The daemon resets the count after a successful
 * handshake.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
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

/** The ceilings, without jitter: min(cap, base · 2ⁿ) for retry n (recurs forever; output: the ceiling). */
export const ceilings = (policy: Policy = defaultPolicy): Schedule.Schedule<Duration.Duration> =>
  Schedule.exponential(policy.base, 2).pipe(
    Schedule.modifyDelay((_, delay) => Duration.min(delay, policy.cap)),
    Schedule.delays
  )

/** The jittered delays: each uniformly drawn in [0, ceiling] (recurs forever; output: the delay), for `Effect.retry`. */
export const schedule = (policy: Policy = defaultPolicy): Schedule.Schedule<Duration.Duration> =>
  Schedule.exponential(policy.base, 2).pipe(
    Schedule.modifyDelay((_, delay) => Duration.min(delay, policy.cap)),
    Schedule.jitteredWith({ min: 0, max: 1 }),
    Schedule.delays
  )

/** A retry counter: `next` sleeps the jittered delay of the current retry and counts it; `reset` starts over. */
export interface Backoff {
  /** Sleeps before the next retry; returns the delay it slept. */
  readonly next: Effect.Effect<Duration.Duration>
  /** Back to retry 0, e.g. after a successful handshake. */
  readonly reset: Effect.Effect<void>
  /** How many delays were taken since the last reset. */
  readonly attempts: Effect.Effect<number>
}

/** A fresh counter for `policy`, driving {@link schedule}. */
export const make = (policy: Policy = defaultPolicy): Effect.Effect<Backoff> =>
  Effect.map(Schedule.driver(schedule(policy)), (driver) => ({
    // The schedule recurs forever: its driver never reports the end.
    next: Effect.orDie(driver.next(undefined)),
    reset: driver.reset,
    attempts: Effect.map(Ref.get(driver.iterationMeta), (meta) => meta.recurrence)
  }))
