/**
 * One relay per embedded store: `relay serve` holds a kernel lock on `<data-dir>/relay.lock` while it runs
 * (`@cmdop/node/FileLock`: released by the kernel when the process ends, `kill -9` included, so a crash never
 * leaves a stale lock). A second relay on the same data dir stops with a clear error instead of sharing a SQLite
 * file it would corrupt the state of (each relay marks every machine offline at start, and holds its own streams).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as FileLock from "@cmdop/node/FileLock"
import * as Effect from "effect/Effect"
import * as path from "node:path"
import { CliError } from "../CliError.js"

/** Holds the data dir's relay lock for the life of the scope (creating the directory, 0700, when missing). */
export const lockDataDir = (dataDir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const lockPath = path.join(dataDir, "relay.lock")
    yield* fs.makeDirectory(dataDir, { recursive: true, mode: 0o700 })
    yield* FileLock.acquire(lockPath, { timeout: "300 millis" })
  }).pipe(
    Effect.catchAll((error) =>
      Effect.fail(
        error instanceof FileLock.LockTimeout
          ? new CliError({
              message:
                `another relay (pid ${error.holder}) is already serving the data dir ${dataDir}: stop it, ` +
                "pick another --data-dir, or run several nodes on one PostgreSQL (--db postgres://… --node-id …)"
            })
          : new CliError({ message: `cannot lock the data dir ${dataDir}: ${error.message}` })
      )
    )
  )
