/**
 * One relay per embedded store: a relay on the SQLite store holds a kernel lock on `<data-dir>/relay.lock` while it
 * runs (`@cmdop/node/FileLock`: released by the kernel when the process ends, `kill -9` included, so a crash never
 * leaves a stale lock). A second relay on the same data dir — `relay serve`, `cmdop up` or the in-process
 * `RelayServer.serve` alike — stops with a clear error instead of sharing a SQLite file whose state it would corrupt
 * (each relay marks every machine offline at start, and holds its own streams). Several relays share a store only
 * as the nodes of a cluster, on PostgreSQL.
 */
import * as FileLock from "@cmdop/node/FileLock"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as path from "node:path"

/** The data dir is served by another relay, or cannot be locked. */
export class DataDirLockError extends Data.TaggedError("DataDirLockError")<{ readonly message: string }> {}

/** The lock file of a data dir. */
export const lockPath = (dataDir: string): string => path.join(dataDir, "relay.lock")

/** Holds the data dir's relay lock for the life of the scope (creating the directory, 0700, when missing). */
export const lockDataDir = (dataDir: string): Effect.Effect<void, DataDirLockError, Scope.Scope> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    yield* fs.makeDirectory(dataDir, { recursive: true, mode: 0o700 })
    yield* FileLock.acquire(lockPath(dataDir), { timeout: "300 millis" })
  }).pipe(
    Effect.provide(NodeFileSystem.layer),
    Effect.catchAll((error) =>
      Effect.fail(
        new DataDirLockError({
          message:
            error instanceof FileLock.LockTimeout
              ? `another relay (pid ${error.holder}) is already serving the data dir ${dataDir}: stop it, ` +
                "pick another --data-dir, or run several nodes on one PostgreSQL (--db postgres://… --node-id …)"
              : `cannot lock the data dir ${dataDir}: ${error.message}`
        })
      )
    )
  )
