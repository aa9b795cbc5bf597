/**
 * The policy in force on a machine, kept in step with its `permissions.yaml`. The file is watched (its directory,
 * so editors that save by rename are seen) and polled as a fallback; an edit that does not validate keeps the
 * last good policy and is reported (`status`) and logged. Decisions read `current`, which never waits on disk.
 *
 * - No file at start: no gate (`current` is `undefined`); a file that appears later is loaded.
 * - An invalid file at start: there is no last good policy, so the file defaults apply (keys and users allowed,
 *   guests denied) until it is fixed; an owner can still repair it remotely, a guest gets nothing.
 * - A file removed while running keeps the last policy (an editor may remove and rewrite it); restart the agent
 *   to run without a gate.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as NodePath from "node:path"
import type { Decision } from "./Decide.js"
import { decide } from "./Decide.js"
import type { Policy } from "./Policy.js"
import { FILE_DEFAULTS } from "./Policy.js"
import { PolicyError } from "./PolicyError.js"
import { parsePolicy } from "./PolicyFile.js"
import { warmUp } from "./Reader.js"
import type { GateRequest } from "./Request.js"

/** What `agent status` shows about the gate. */
export interface PolicyStatus {
  readonly path: string
  /** The policy decisions use; `undefined` means no gate is configured. */
  readonly policy: Policy | undefined
  /** Why the file on disk is not the policy in force (invalid edit, unreadable); cleared by a good load. */
  readonly error: PolicyError | undefined
  /** When the policy in force was loaded (epoch ms), if any. */
  readonly loadedAt: number | undefined
}

export class PolicyStore extends Context.Tag("@cmdop/gate/PolicyStore")<
  PolicyStore,
  {
    readonly current: Effect.Effect<Policy | undefined>
    readonly status: Effect.Effect<PolicyStatus>
    /** Re-reads the file now (the watcher and the poll call this). */
    readonly reload: Effect.Effect<PolicyStatus>
    /** The gate's decision under the policy in force. */
    readonly decide: (request: GateRequest) => Effect.Effect<Decision>
  }
>() {}

export interface PolicyStoreOptions {
  readonly path: string
  /** How often to re-read the file even without a watch event (default 2 s). */
  readonly pollInterval?: Duration.DurationInput
  /** Use `fs.watch` on the file's directory (default true). */
  readonly watch?: boolean
}

/** The policy for a file that has never validated: the file defaults with no rules. */
const fallbackPolicy = (path: string): Policy => ({ file: path, defaults: FILE_DEFAULTS, rules: [] })

type Read = { readonly _tag: "Missing" } | { readonly _tag: "Text"; readonly text: string } | PolicyError

/** Builds the store: loads the file once, then watches and polls it for the lifetime of the scope. */
export const make = (options: PolicyStoreOptions) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = options.path
    const state = yield* Ref.make<PolicyStatus & { readonly text: string | undefined; readonly seen: boolean }>({
      path,
      policy: undefined,
      error: undefined,
      loadedAt: undefined,
      text: undefined,
      seen: false
    })
    const lock = yield* Effect.makeSemaphore(1)

    const readFile: Effect.Effect<Read> = fs.readFileString(path).pipe(
      Effect.map((text): Read => ({ _tag: "Text", text })),
      Effect.catchAll((e) =>
        Effect.succeed<Read>(
          e._tag === "SystemError" && e.reason === "NotFound"
            ? { _tag: "Missing" }
            : new PolicyError({
                file: path,
                line: 0,
                problem: `cannot read: ${e.message}`,
                hint: "check the file's permissions"
              })
        )
      )
    )

    const apply = (read: Read) =>
      Effect.gen(function* () {
        const before = yield* Ref.get(state)
        if (read._tag === "Missing") {
          if (!before.seen) return
          const error = new PolicyError({
            file: path,
            line: 0,
            problem: "the file was removed; keeping the last policy",
            hint: "restore it, or restart the agent to run without a gate"
          })
          if (before.error?.problem !== error.problem) yield* Effect.logWarning(error.message)
          return yield* Ref.set(state, { ...before, error, text: undefined })
        }
        if (read._tag === "PolicyError") {
          yield* Effect.logWarning(`permissions: ${read.message}`)
          const policy = before.policy ?? fallbackPolicy(path)
          return yield* Ref.set(state, { ...before, error: read, policy, text: undefined, seen: true })
        }
        if (read.text === before.text && before.seen) return
        const parsed = parsePolicy(read.text, path)
        const now = yield* Clock.currentTimeMillis
        if (Either.isLeft(parsed)) {
          yield* Effect.logWarning(
            `permissions: ${parsed.left.message}; ${
              before.loadedAt === undefined
                ? "no version of it has loaded yet: the file defaults apply (keys and users allowed, guests denied) until it is fixed"
                : "keeping the last good policy"
            }`
          )
          return yield* Ref.set(state, {
            ...before,
            text: read.text,
            seen: true,
            error: parsed.left,
            policy: before.policy ?? fallbackPolicy(path)
          })
        }
        if (before.seen) yield* Effect.logInfo(`permissions: reloaded ${path} (${parsed.right.rules.length} rules)`)
        yield* Ref.set(state, {
          path,
          policy: parsed.right,
          error: undefined,
          loadedAt: now,
          text: read.text,
          seen: true
        })
      })

    const status = Ref.get(state).pipe(
      Effect.map(({ path, policy, error, loadedAt }): PolicyStatus => ({ path, policy, error, loadedAt }))
    )
    const reload = lock
      .withPermits(1)(readFile.pipe(Effect.flatMap(apply)))
      .pipe(Effect.zipRight(status))

    yield* reload
    yield* reload.pipe(Effect.repeat(Schedule.spaced(options.pollInterval ?? Duration.seconds(2))), Effect.forkScoped)
    if (options.watch !== false) {
      const name = NodePath.basename(path)
      yield* fs.watch(NodePath.dirname(path)).pipe(
        Stream.filter((event) => NodePath.basename(event.path) === name),
        Stream.runForEach(() => reload),
        Effect.catchAll((e) => Effect.logDebug(`permissions: not watching ${path} (${e.message}); polling only`)),
        Effect.forkScoped
      )
    }
    const current = Ref.get(state).pipe(Effect.map((s) => s.policy))
    return PolicyStore.of({
      current,
      status,
      reload,
      // The shell parser loads on the first decision, not with the store: an idle agent does not carry it.
      decide: (request) =>
        Effect.zipRight(
          warmUp,
          Effect.map(current, (policy) => decide(policy, request))
        )
    })
  })

/** The store for one file, watched and polled while the layer lives. */
export const layer = (options: PolicyStoreOptions): Layer.Layer<PolicyStore, never, FileSystem.FileSystem> =>
  Layer.scoped(PolicyStore, make(options))

/** A fixed policy (or none), for tests and embedding: `reload` changes nothing. */
export const layerFixed = (policy: Policy | undefined, path = "(memory)"): Layer.Layer<PolicyStore> =>
  Layer.succeed(
    PolicyStore,
    PolicyStore.of({
      current: Effect.succeed(policy),
      status: Effect.succeed({ path, policy, error: undefined, loadedAt: undefined }),
      reload: Effect.succeed({ path, policy, error: undefined, loadedAt: undefined }),
      decide: (request) => Effect.succeed(decide(policy, request))
    })
  )
