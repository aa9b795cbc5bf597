/**
 * A lock file beside a state file (`<file>.lock`), so concurrent cmdop processes take turns at read-modify-write.
 *
 * The lock is created with O_EXCL and holds the owner's pid and a nonce. A live owner is waited for with jittered
 * retries up to a deadline, then a `LockTimeout`. A lock is stale only when its owner's pid is gone AND it is
 * older than `STALE_AFTER_MS` (so a lock that was just released and re-taken is never mistaken for a stale one);
 * a stale lock is taken over by renaming it aside and checking we moved the very file we judged stale.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import { isAlive } from "./Pid.js"

/** How old a dead owner's lock must be before it is taken over. */
export const STALE_AFTER_MS = 2_000

export class LockTimeout {
  readonly _tag = "LockTimeout"
  constructor(
    readonly path: string,
    readonly holder: string
  ) {}
}

/**
 * Holds `lockPath` for the life of the scope. Fails with `LockTimeout` when another live process keeps it longer
 * than `timeout`, and with the platform error when the directory is not writable.
 */
export const acquire = (
  lockPath: string,
  options: { readonly timeout?: Duration.DurationInput } = {}
): Effect.Effect<void, LockTimeout | PlatformError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const deadline = Date.now() + Duration.toMillis(options.timeout ?? "15 seconds")
    const mine = `${process.pid} ${Math.random().toString(36).slice(2)}\n`
    const tryCreate = fs.writeFileString(lockPath, mine, { flag: "wx", mode: 0o600 }).pipe(
      Effect.as(true),
      Effect.catchIf(
        (e) => e._tag === "SystemError" && e.reason === "AlreadyExists",
        () => Effect.succeed(false)
      )
    )
    const takeOver = (seen: string) =>
      Effect.gen(function* () {
        const aside = `${lockPath}.stale.${process.pid}.${Math.random().toString(36).slice(2)}`
        const moved = yield* fs.rename(lockPath, aside).pipe(
          Effect.as(true),
          Effect.orElseSucceed(() => false)
        )
        if (!moved) return
        const content = yield* fs.readFileString(aside).pipe(Effect.orElseSucceed(() => ""))
        // We moved a fresh lock by mistake (someone re-took it between our look and the rename): put it back.
        if (content !== seen) yield* fs.link(aside, lockPath).pipe(Effect.ignore)
        yield* fs.remove(aside).pipe(Effect.ignore)
      })
    for (;;) {
      if (yield* tryCreate) break
      const holder = yield* fs.readFileString(lockPath).pipe(Effect.orElseSucceed(() => ""))
      const info = yield* fs.stat(lockPath).pipe(Effect.option)
      const age = Option.match(info, {
        onNone: () => 0,
        onSome: (i) => Date.now() - Option.getOrElse(i.mtime, () => new Date()).getTime()
      })
      const pid = Number.parseInt(holder.trim().split(" ")[0] ?? "", 10)
      if (holder.trim() !== "" && !isAlive(pid) && age > STALE_AFTER_MS) {
        yield* takeOver(holder)
        continue
      }
      if (Date.now() > deadline) return yield* Effect.fail(new LockTimeout(lockPath, holder.trim()))
      yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(2, 20)))
    }
    yield* Effect.addFinalizer(() => fs.remove(lockPath).pipe(Effect.ignore))
  })
