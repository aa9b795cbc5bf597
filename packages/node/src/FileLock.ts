/**
 * A lock file beside a state file (`<file>.lock`), so concurrent cmdop processes take turns at read-modify-write.
 *
 * The lock is created with O_EXCL and holds the owner's pid. A lock whose owner is gone (crash, kill -9) is taken
 * over; a live owner is waited for with jittered retries up to a deadline, then a clear `Locked` error.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"

export class LockTimeout {
  readonly _tag = "LockTimeout"
  constructor(
    readonly path: string,
    readonly holder: string
  ) {}
}

const alive = (pid: number): boolean => {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Holds `lockPath` for the life of the scope. Fails with `LockTimeout` when another live process keeps it longer
 * than `timeout`, and with the platform error when the directory is not writable.
 */
export const acquire = (
  lockPath: string,
  options: { readonly timeout?: Duration.DurationInput } = {}
): Effect.Effect<void, LockTimeout | import("@effect/platform/Error").PlatformError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const deadline = Date.now() + Duration.toMillis(options.timeout ?? "15 seconds")
    const tryCreate = fs.writeFile(lockPath, new TextEncoder().encode(`${process.pid}\n`), { flag: "wx", mode: 0o600 })
    for (;;) {
      const created = yield* tryCreate.pipe(
        Effect.as(true),
        Effect.catchIf(
          (e) => e._tag === "SystemError" && e.reason === "AlreadyExists",
          () => Effect.succeed(false)
        )
      )
      if (created) break
      const holder = yield* fs.readFileString(lockPath).pipe(Effect.orElseSucceed(() => ""))
      const pid = Number.parseInt(holder.trim(), 10)
      // A lock file can be caught between create and write (empty); only a named, dead owner is stale.
      if (holder.trim() !== "" && !alive(pid)) {
        yield* fs.remove(lockPath).pipe(Effect.ignore)
        continue
      }
      if (Date.now() > deadline) return yield* Effect.fail(new LockTimeout(lockPath, holder.trim()))
      yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(2, 20)))
    }
    yield* Effect.addFinalizer(() => fs.remove(lockPath).pipe(Effect.ignore))
  })
