/**
 * A lock beside a state file (`<file>.lock`), so concurrent cmdop processes take turns at read-modify-write.
 *
 * The lock is a kernel lock on the lock file's open file description (see `fs-native-extensions.d.ts`), not the
 * file's existence or content: the kernel releases it when its holder closes the file or dies, `kill -9` included,
 * and grants it to exactly one of the processes asking. There is no "stale lock" to detect and no takeover to
 * race: a lock file left by a dead holder (empty, garbage or naming any pid) is simply free.
 *
 * Protocol, and why two holders are impossible:
 * 1. open `<file>.lock` with O_CREAT (atomic: it creates the file or opens the existing one), mode 0600;
 * 2. try the exclusive lock on that descriptor; when another holder has it, close and retry after a short jitter;
 * 3. once locked, check that the path still names the inode we locked (a holder removes the file when it releases,
 *    so a waiter may have locked a file that is no longer linked); if not, close and retry;
 * 4. write our pid into the file (for messages only), run the critical section, then remove the file and close.
 * Only a holder removes the lock file, while still holding it; so while a holder holds inode I, the path names I,
 * and any other process that locks must lock I (impossible) or an unlinked inode (rejected by step 3).
 */
import { type PlatformError, SystemError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"

/** Another process held the lock for longer than the caller's timeout. `holder` is the pid it wrote, if any. */
export class LockTimeout {
  readonly _tag = "LockTimeout"
  constructor(
    readonly path: string,
    readonly holder: string
  ) {}
}

/**
 * The native module, loaded on the first lock: finding and loading the addon costs tens of milliseconds, which a
 * command that only reads its state (every `connect exec`) should not pay at start-up.
 */
let native: Promise<typeof import("fs-native-extensions")> | undefined
const loadNative = Effect.tryPromise({
  try: () => (native ??= import("fs-native-extensions")),
  catch: (cause) => cause
})

/** The kernel lock, without waiting; a file system that cannot lock (ENOLCK, EINVAL…) is a platform error. */
const lockNow = (fd: number, lockPath: string): Effect.Effect<boolean, PlatformError> =>
  Effect.flatMap(loadNative, ({ tryLock }) => Effect.try({ try: () => tryLock(fd), catch: (cause) => cause })).pipe(
    Effect.mapError(
      (cause) =>
        new SystemError({
          reason: "Unknown",
          module: "FileSystem",
          method: "lock",
          pathOrDescriptor: lockPath,
          description: `cannot lock ${lockPath}: ${cause instanceof Error ? cause.message : String(cause)}`
        })
    )
  )

const sameFile = (a: FileSystem.File.Info, b: FileSystem.File.Info): boolean =>
  a.dev === b.dev && Option.isSome(a.ino) && Option.isSome(b.ino) && a.ino.value === b.ino.value

/**
 * One try: opens and locks `lockPath` in a child of `scope`. `true` leaves the descriptor open (and so the lock
 * held) until `scope` closes; `false` has closed it again.
 */
const attempt = (
  fs: FileSystem.FileSystem,
  lockPath: string,
  scope: Scope.Scope
): Effect.Effect<boolean, PlatformError> =>
  Effect.gen(function* () {
    const child = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    const held = yield* Effect.gen(function* () {
      const file = yield* fs.open(lockPath, { flag: "a+", mode: 0o600 })
      if (!(yield* lockNow(file.fd, lockPath))) return false
      const locked = yield* file.stat
      const linked = yield* fs.stat(lockPath).pipe(
        Effect.asSome,
        Effect.catchIf(
          (e) => e._tag === "SystemError" && e.reason === "NotFound",
          () => Effect.succeedNone
        )
      )
      if (Option.isNone(linked) || !sameFile(locked, linked.value)) return false
      // Informational only (error messages, tests): who holds it. A holder killed mid-write leaves it torn; harmless.
      yield* file.truncate(0)
      yield* file.writeAll(new TextEncoder().encode(`${process.pid}\n`))
      return true
    }).pipe(
      Scope.extend(child),
      Effect.onExit((exit) => (Exit.isSuccess(exit) && exit.value ? Effect.void : Scope.close(child, Exit.void)))
    )
    return held
  })

/**
 * Holds `lockPath` for the life of the scope; on release the lock file is removed, then closed. Fails with
 * `LockTimeout` when other processes keep it longer than `timeout` (default 15 s), and with the platform error
 * when the directory is not writable.
 */
export const acquire = (
  lockPath: string,
  options: { readonly timeout?: Duration.DurationInput } = {}
): Effect.Effect<void, LockTimeout | PlatformError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const scope = yield* Effect.scope
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(options.timeout ?? "15 seconds")
    for (;;) {
      if (yield* attempt(fs, lockPath, scope)) break
      if ((yield* Clock.currentTimeMillis) > deadline) {
        const holder = yield* fs.readFileString(lockPath).pipe(Effect.orElseSucceed(() => ""))
        return yield* Effect.fail(new LockTimeout(lockPath, holder.trim() === "" ? "unknown" : holder.trim()))
      }
      yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(3, 25)))
    }
    // Added after the descriptor's own finalizer, so it runs first: remove while still holding, then close.
    yield* Effect.addFinalizer(() => fs.remove(lockPath).pipe(Effect.ignore))
  })
