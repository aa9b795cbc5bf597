/**
 * Atomic writes of state files: a temp file beside the target (same directory, so rename is atomic), written,
 * fsynced, renamed over the target, then the directory fsynced. A crash leaves the old file or the new one, never
 * a torn one. Files are created 0600 and their directory 0700: they hold secrets.
 *
 * A writer killed before its rename leaves its temp file (which may hold an API key). Temp files are named
 * `.<file>.<pid>.<random>.tmp`, and every write first removes those of its target whose writer is no longer alive.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import * as Effect from "effect/Effect"
import * as path from "node:path"
import { isAlive } from "./Pid.js"

const tempPrefix = (file: string): string => `.${path.basename(file)}.`

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** The pid in the name of one of `file`'s temp files, or `undefined` when `name` is not one of them. */
const tempWriter = (file: string, name: string): number | undefined => {
  const match = new RegExp(`^${escape(tempPrefix(file))}(\\d+)\\.[0-9a-z]*\\.tmp$`).exec(name)
  return match === null ? undefined : Number(match[1])
}

/** Removes temp files of `file` left by writers that are gone (killed between creating and renaming them). */
export const removeStaleTemps = (file: string): Effect.Effect<void, never, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = path.dirname(file)
    const names = yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed((): ReadonlyArray<string> => []))
    for (const name of names) {
      const pid = tempWriter(file, name)
      if (pid === undefined || pid === process.pid || isAlive(pid)) continue
      yield* fs.remove(path.join(dir, name)).pipe(Effect.ignore)
    }
  })

/** Creates `dir` (and parents) with mode 0700, tightening an existing one we own to 0700. */
export const ensurePrivateDir = (dir: string): Effect.Effect<void, PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    yield* fs.makeDirectory(dir, { recursive: true, mode: 0o700 })
    yield* fs.chmod(dir, 0o700)
  })

/** Replaces `file` with `contents` atomically, mode 0600. */
export const write = (
  file: string,
  contents: string | Uint8Array,
  options: { readonly mode?: number } = {}
): Effect.Effect<void, PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = path.dirname(file)
    yield* removeStaleTemps(file)
    const tmp = path.join(dir, `${tempPrefix(file)}${process.pid}.${Math.random().toString(36).slice(2)}.tmp`)
    const bytes = typeof contents === "string" ? new TextEncoder().encode(contents) : contents
    yield* Effect.scoped(
      Effect.gen(function* () {
        const handle = yield* fs.open(tmp, { flag: "wx", mode: options.mode ?? 0o600 })
        yield* handle.writeAll(bytes)
        yield* handle.sync
      })
    ).pipe(Effect.onError(() => fs.remove(tmp).pipe(Effect.ignore)))
    yield* fs.chmod(tmp, options.mode ?? 0o600)
    yield* fs.rename(tmp, file).pipe(Effect.onError(() => fs.remove(tmp).pipe(Effect.ignore)))
    // fsync the directory so the rename itself survives a power loss.
    yield* Effect.scoped(Effect.flatMap(fs.open(dir, { flag: "r" }), (d) => d.sync)).pipe(Effect.ignore)
  })

/** Reads `file` as text; `undefined` when it does not exist. */
export const readIfExists = (file: string): Effect.Effect<string | undefined, PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    return yield* fs.readFileString(file).pipe(
      Effect.catchIf(
        (e) => e._tag === "SystemError" && e.reason === "NotFound",
        () => Effect.succeed(undefined)
      )
    )
  })
