/**
 * The agent tests' own helpers, in one place: polling for a condition (`eventually`), process liveness through
 * `/proc`, temporary directories removed with the test's scope, and variables set in the agent's environment.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as TestServices from "effect/TestServices"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** A condition that did not hold in time. */
export class NotYet extends Error {
  constructor(what: string, timeout: Duration.DurationInput) {
    super(`timed out after ${Duration.format(timeout)} waiting for ${what}`)
  }
}

/**
 * Runs `probe` every 10 ms (real time, also under the TestClock) until it answers a value; fails with `NotYet` after
 * `timeout`. The timeout is a safety net for a stuck test, not a bound under test: keep it generous.
 */
export const eventuallyEffect = <A, E, R>(
  what: string,
  probe: Effect.Effect<A | undefined, E, R>,
  timeout: Duration.DurationInput = "10 seconds"
): Effect.Effect<A, E | NotYet, R> =>
  probe.pipe(
    Effect.map(Option.fromNullable),
    Effect.repeat(Schedule.recurUntil(Option.isSome<A>).pipe(Schedule.addDelay(() => Duration.millis(10)))),
    Effect.map((found) => (found as Option.Some<A>).value),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new NotYet(what, timeout) }),
    TestServices.provideLive
  )

/** {@link eventuallyEffect} with a plain probe. */
export const eventually = <A>(
  what: string,
  probe: () => A | undefined,
  timeout?: Duration.DurationInput
): Effect.Effect<A, NotYet> => eventuallyEffect(what, Effect.sync(probe), timeout)

/** Waits until `probe()` is true. */
export const until = (what: string, probe: () => boolean, timeout?: Duration.DurationInput) =>
  Effect.asVoid(eventually(what, () => (probe() ? true : undefined), timeout))

/** Whether `pid` is alive (zombies count as dead): Linux `/proc/<pid>/stat`. */
export const isRunning = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)
    return state !== "Z" && state !== "X"
  } catch {
    return false
  }
}

/** Waits until none of `pids` is alive. */
export const allGone = (pids: ReadonlyArray<number>, timeout?: Duration.DurationInput) =>
  until(`pids ${pids.join(", ")} to be gone`, () => !pids.some(isRunning), timeout)

/** A fresh directory under the system's temp dir, removed (with its contents) when the scope closes. */
export const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/** Sets variables in the agent's (this process's) environment for the scope; restores them after. */
export const agentEnv = (vars: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]))
      Object.assign(process.env, vars)
      return before
    }),
    (before) =>
      Effect.sync(() => {
        for (const [k, v] of Object.entries(before))
          if (v === undefined) delete process.env[k]
          else process.env[k] = v
      })
  )
