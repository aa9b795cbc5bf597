/**
 * Waiting in tests without sleeping as synchronisation: poll a probe (`Effect.repeat` until it yields a value) and
 * give up after a timeout with a message that says what was awaited.
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

/** The awaited condition did not hold in time. */
export class EventuallyTimeout extends Data.TaggedError("EventuallyTimeout")<{ readonly what: string }> {
  override get message(): string {
    return `timed out waiting for ${this.what}`
  }
}

export interface Options {
  /** How long to keep polling. Default 10 seconds. */
  readonly timeout?: Duration.DurationInput
  /** Pause between polls. Default 20 milliseconds. */
  readonly interval?: Duration.DurationInput
}

/**
 * Runs `probe` until it yields something other than `undefined`, and returns that. Fails with `EventuallyTimeout`
 * naming `what` after `options.timeout`; a failure of the probe itself ends the wait at once.
 */
export const eventually = <A, E, R>(
  what: string,
  probe: Effect.Effect<A | undefined, E, R>,
  options: Options = {}
): Effect.Effect<A, E | EventuallyTimeout, R> =>
  probe.pipe(
    Effect.repeat({
      until: (a): a is A => a !== undefined,
      // passthrough: the repetition ends with the probe's last value, not the schedule's count.
      schedule: Schedule.passthrough(Schedule.spaced(options.interval ?? "20 millis"))
    }),
    Effect.map((a) => a as A),
    Effect.timeoutFail({ duration: options.timeout ?? "10 seconds", onTimeout: () => new EventuallyTimeout({ what }) })
  )

/** `eventually` over a synchronous probe. */
export const eventuallySync = <A>(what: string, probe: () => A | undefined, options: Options = {}) =>
  eventually(what, Effect.sync(probe), options)
