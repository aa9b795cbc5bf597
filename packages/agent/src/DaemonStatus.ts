/**
 * What the agent daemon tells `cmdop agent status` and `cmdop agent stop`: `~/.cmdop/daemon.status` (JSON, written
 * atomically on every state change) and `~/.cmdop/cmdop.pid`. A status whose pid is no longer alive reads as
 * STOPPED, so a crashed daemon never shows as ONLINE.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as AtomicFile from "@cmdop/node/AtomicFile"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as Pid from "@cmdop/node/Pid"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as path from "node:path"

export const State = Schema.Literal("ONLINE", "CONNECTING", "STOPPED")
export type State = typeof State.Type

/** The contents of `daemon.status`. */
export const Status = Schema.Struct({
  state: State,
  pid: Schema.Int,
  /** RFC 3339: when the daemon entered `state`. */
  since: Schema.String,
  /** The relay address setting: one node, or every node of a cluster as `a:50051,b:50051`. */
  server: Schema.String,
  /**
   * The one relay node the daemon is connected to (ONLINE) or trying (CONNECTING): a node `server` names, or one a
   * cluster told it about; absent before the first attempt (and in files of older daemons).
   */
  relay: Schema.optional(Schema.String),
  /** The workspace the credential came from; empty when it came from the environment or a flag. */
  workspace: Schema.String,
  machine_id: Schema.String,
  last_error: Schema.optional(Schema.String)
})
export type Status = typeof Status.Type

/** `daemon.status` or `cmdop.pid` could not be read, parsed or written, or a daemon is already running. */
export class DaemonStatusError extends Schema.TaggedError<DaemonStatusError>()("DaemonStatusError", {
  reason: Schema.Literal("Corrupt", "Unreadable", "Unwritable", "AlreadyRunning"),
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    switch (this.reason) {
      case "Corrupt":
        return `${this.path} ${this.detail}: left unchanged`
      case "AlreadyRunning":
        return `the agent daemon is already running (${this.detail}, see ${this.path})`
      default:
        return `cannot ${this.reason === "Unreadable" ? "read" : "write"} ${this.path}: ${this.detail}`
    }
  }
}

/** Whether a process with this pid exists (ours or another user's). */
export const isAlive = Pid.isAlive

const ioError =
  (reason: "Unreadable" | "Unwritable", shown: string) =>
  (error: PlatformError): DaemonStatusError =>
    new DaemonStatusError({ reason, path: shown, detail: error.message })

const StatusJson = Schema.parseJson(Status)

/** Replaces `daemon.status` atomically (mode 0600). */
export const write = (status: Status): Effect.Effect<void, DaemonStatusError, FileSystem.FileSystem | CmdopPaths> =>
  Effect.gen(function* () {
    const paths = yield* CmdopPaths
    yield* AtomicFile.ensurePrivateDir(path.dirname(paths.daemonStatus)).pipe(
      Effect.zipRight(
        AtomicFile.write(paths.daemonStatus, JSON.stringify(Schema.encodeSync(Status)(status), null, 2) + "\n")
      ),
      Effect.mapError(ioError("Unwritable", paths.display(paths.daemonStatus)))
    )
  })

/**
 * The daemon's status; none when no daemon ever ran here. A status whose pid is not alive reads as STOPPED (with
 * the rest of the record, e.g. `last_error`, as the daemon left it).
 */
export const read: Effect.Effect<
  Option.Option<Status>,
  DaemonStatusError,
  FileSystem.FileSystem | CmdopPaths
> = Effect.gen(function* () {
  const paths = yield* CmdopPaths
  const shown = paths.display(paths.daemonStatus)
  const text = yield* AtomicFile.readIfExists(paths.daemonStatus).pipe(Effect.mapError(ioError("Unreadable", shown)))
  if (text === undefined) return Option.none()
  const status = yield* Schema.decodeUnknown(StatusJson)(text).pipe(
    Effect.mapError(
      (error) =>
        new DaemonStatusError({
          reason: "Corrupt",
          path: shown,
          detail: `is not a daemon status (${ParseResult.TreeFormatter.formatErrorSync(error).split("\n").pop()?.trim()})`
        })
    )
  )
  return Option.some(
    status.state !== "STOPPED" && !isAlive(status.pid) ? { ...status, state: "STOPPED" as const } : status
  )
})

/** The pid in `cmdop.pid`, if the file exists and holds one. */
export const readPid: Effect.Effect<
  Option.Option<number>,
  DaemonStatusError,
  FileSystem.FileSystem | CmdopPaths
> = Effect.gen(function* () {
  const paths = yield* CmdopPaths
  const text = yield* AtomicFile.readIfExists(paths.pidFile).pipe(
    Effect.mapError(ioError("Unreadable", paths.display(paths.pidFile)))
  )
  const pid = Number.parseInt(text?.trim() ?? "", 10)
  return Number.isInteger(pid) && pid > 0 ? Option.some(pid) : Option.none()
})

/** The pid of the running daemon: the pid file's, when that process is alive. */
export const runningPid: Effect.Effect<
  Option.Option<number>,
  DaemonStatusError,
  FileSystem.FileSystem | CmdopPaths
> = Effect.map(readPid, Option.filter(isAlive))

/** Writes `pid` (default: this process) to `cmdop.pid`. */
export const writePid = (
  pid: number = process.pid
): Effect.Effect<void, DaemonStatusError, FileSystem.FileSystem | CmdopPaths> =>
  Effect.gen(function* () {
    const paths = yield* CmdopPaths
    yield* AtomicFile.ensurePrivateDir(path.dirname(paths.pidFile)).pipe(
      Effect.zipRight(AtomicFile.write(paths.pidFile, `${pid}\n`)),
      Effect.mapError(ioError("Unwritable", paths.display(paths.pidFile)))
    )
  })

/** Removes `cmdop.pid` if it still names `pid` (default: this process); never someone else's. */
export const removePid = (pid: number = process.pid): Effect.Effect<void, never, FileSystem.FileSystem | CmdopPaths> =>
  Effect.gen(function* () {
    const paths = yield* CmdopPaths
    const fs = yield* FileSystem.FileSystem
    const current = yield* readPid.pipe(Effect.orElseSucceed(() => Option.none<number>()))
    if (Option.isSome(current) && current.value === pid) yield* fs.remove(paths.pidFile).pipe(Effect.ignore)
  })

/**
 * Claims `cmdop.pid` for this process for the life of the scope: fails with `AlreadyRunning` when another live
 * process holds it; a stale file (dead pid) is taken over. The file is removed when the scope closes.
 */
export const acquirePid: Effect.Effect<void, DaemonStatusError, FileSystem.FileSystem | CmdopPaths | Scope.Scope> =
  Effect.gen(function* () {
    const paths = yield* CmdopPaths
    const running = yield* runningPid
    if (Option.isSome(running) && running.value !== process.pid)
      return yield* Effect.fail(
        new DaemonStatusError({
          reason: "AlreadyRunning",
          path: paths.display(paths.pidFile),
          detail: `pid ${running.value}`
        })
      )
    yield* Effect.acquireRelease(writePid(), () => removePid())
  })
