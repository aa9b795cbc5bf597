/**
 * The durable `WorkspaceStore`: `~/.cmdop/ssh_workspaces.json`, 0600 in a 0700 directory, each update a
 * read-modify-write under `ssh_workspaces.json.lock`, written atomically. A file that does not parse is reported
 * (file and problem named) and never rewritten. A file found readable or writable by other users (copied, restored
 * from a backup, made by an older tool) is set back to 0600 when it is read, and the caller is told once: it holds
 * API keys, which others may have read (ssh refuses such a key file; here the keys are the relay's to rotate).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { WorkspaceStore } from "@cmdop/domain/WorkspaceStore"
import type { WorkspaceFile } from "@cmdop/domain/Workspace"
import { WorkspaceStoreError } from "@cmdop/domain/WorkspaceStoreError"
import * as codec from "@cmdop/domain/WorkspaceFileCodec"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as path from "node:path"
import * as AtomicFile from "./AtomicFile.js"
import { CmdopPaths } from "./CmdopPaths.js"
import * as FileLock from "./FileLock.js"

export interface Options {
  /** Told (once) that the file was open to other users and is 0600 now; the default logs a warning. */
  readonly onLooseMode?: (message: string) => Effect.Effect<void>
}

/** Builds the store for a given file path (`display` renders it for messages). */
export const make = (file: string, display: (p: string) => string = (p) => p, options: Options = {}) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const shown = display(file)
    const provide = Effect.provideService(FileSystem.FileSystem, fs)
    const io = (reason: "Unreadable" | "Unwritable") => (e: { readonly message: string }) =>
      new WorkspaceStoreError({ reason, path: shown, detail: e.message })

    let told = false
    /** A file of ours open to others is set back to 0600 (a file we do not own is left alone: not ours to change). */
    const tighten = Effect.gen(function* () {
      const info = yield* fs.stat(file)
      const mode = info.mode & 0o777
      if ((mode & 0o077) === 0 || Option.getOrUndefined(info.uid) !== process.getuid?.()) return
      yield* fs.chmod(file, 0o600)
      if (told) return
      told = true
      const message = `${shown} was open to other users of this machine (mode 0${mode.toString(8)}) and holds API keys: it is 0600 now; if someone else could have read it, have its keys rotated`
      yield* (options.onLooseMode ?? Effect.logWarning)(message)
    }).pipe(Effect.ignore)

    const read = Effect.zipRight(tighten, AtomicFile.readIfExists(file)).pipe(
      provide,
      Effect.mapError(io("Unreadable")),
      Effect.flatMap((text) => codec.decode(shown, text))
    )
    const firstLoad = yield* Effect.cached(read)
    const latest = yield* Ref.make<WorkspaceFile | undefined>(undefined)
    // Serialises this process's own updates before they compete for the file lock with other processes.
    const local = yield* Effect.makeSemaphore(1)

    const locked = <A, E>(body: Effect.Effect<A, E>) =>
      Effect.scoped(
        Effect.gen(function* () {
          yield* AtomicFile.ensurePrivateDir(path.dirname(file)).pipe(provide, Effect.mapError(io("Unwritable")))
          yield* FileLock.acquire(file + ".lock").pipe(
            provide,
            Effect.mapError((e) =>
              e instanceof FileLock.LockTimeout
                ? new WorkspaceStoreError({ reason: "Locked", path: shown, detail: `held by pid ${e.holder}` })
                : io("Unwritable")(e)
            )
          )
          return yield* body
        })
      )

    return WorkspaceStore.of({
      path: shown,
      load: Effect.flatMap(Ref.get(latest), (file) => (file ? Effect.succeed(file) : firstLoad)),
      update: (f) =>
        local.withPermits(1)(
          locked(
            Effect.gen(function* () {
              const current = yield* read
              const [a, next] = yield* f(current)
              yield* AtomicFile.write(file, codec.encode(next)).pipe(provide, Effect.mapError(io("Unwritable")))
              yield* Ref.set(latest, next)
              return a
            })
          )
        )
    })
  })

/** The store at `CmdopPaths.workspaces`, with `options` (the CLI says a loose mode on stderr). */
export const layerFileSystemWith = (
  options: Options
): Layer.Layer<WorkspaceStore, never, FileSystem.FileSystem | CmdopPaths> =>
  Layer.effect(
    WorkspaceStore,
    Effect.flatMap(CmdopPaths, (paths) => make(paths.workspaces, paths.display, options))
  )

/** The store at `CmdopPaths.workspaces` (a loose mode is logged). */
export const layerFileSystem = layerFileSystemWith({})
