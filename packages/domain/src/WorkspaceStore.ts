/**
 * The local workspace store (`~/.cmdop/ssh_workspaces.json`): loaded lazily on first access, one instance per
 * process, every update read-modify-written under the store's lock so concurrent writers never lose each other's
 * changes. The durable layer lives in `@cmdop/node`; `layerMemory` here keeps the file's text in memory and goes
 * through the same codec, so both layers pass one contract suite.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as codec from "./internal/workspaceCodec.js"
import type { WorkspaceFile } from "./Workspace.js"
import type { WorkspaceStoreError } from "./WorkspaceStoreError.js"

export class WorkspaceStore extends Context.Tag("@cmdop/domain/WorkspaceStore")<
  WorkspaceStore,
  {
    /** Where the store lives, for messages (`~/.cmdop/ssh_workspaces.json` in the durable layer). */
    readonly path: string
    /** The store as of its first load in this process (or the last update made through this instance). */
    readonly load: Effect.Effect<WorkspaceFile, WorkspaceStoreError>
    /**
     * Applies `f` to the freshest store under the lock and writes its result atomically. When `f` fails nothing is
     * written. Returns `f`'s value.
     */
    readonly update: <A, E>(
      f: (file: WorkspaceFile) => Effect.Effect<readonly [A, WorkspaceFile], E>
    ) => Effect.Effect<A, E | WorkspaceStoreError>
  }
>() {}

/** Builds an in-memory store around a text cell (what a file would hold; `undefined` means no file). */
export const makeMemory = (cell: Ref.Ref<string | undefined>, path = "memory:ssh_workspaces.json") =>
  Effect.gen(function* () {
    const lock = yield* Effect.makeSemaphore(1)
    const cached = yield* Effect.cached(Effect.flatMap(Ref.get(cell), (text) => codec.decode(path, text)))
    const latest = yield* Ref.make<WorkspaceFile | undefined>(undefined)
    return WorkspaceStore.of({
      path,
      load: Effect.flatMap(Ref.get(latest), (file) => (file ? Effect.succeed(file) : cached)),
      update: (f) =>
        lock.withPermits(1)(
          Effect.gen(function* () {
            const current = yield* Effect.flatMap(Ref.get(cell), (text) => codec.decode(path, text))
            const [a, next] = yield* f(current)
            yield* Ref.set(cell, codec.encode(next))
            yield* Ref.set(latest, next)
            return a
          })
        )
    })
  })

/** An in-memory store, optionally seeded with a file's text. For tests and embedding. */
export const layerMemory = (initialText?: string): Layer.Layer<WorkspaceStore> =>
  Layer.effect(
    WorkspaceStore,
    Effect.flatMap(Ref.make<string | undefined>(initialText), (cell) => makeMemory(cell))
  )
