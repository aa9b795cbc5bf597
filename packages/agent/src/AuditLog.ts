/**
 * The machine's own audit trail: one JSON object per line in `<stateDir>/audit.log`
 * (`$XDG_STATE_HOME/cmdop/audit.log`, default `~/.local/state/cmdop/audit.log`), for every session that reaches this
 * machine: its open (who, how, a digest of what), the input each principal typed into it (coalesced by the engine),
 * and its end.
 *
 * The file: created on demand, mode 0600 in a 0700 directory. Each line is written with ONE write on a descriptor
 * opened with `O_APPEND` and kept open, so lines of concurrent writers (fibers of this process: the write is
 * synchronous; other processes: by the kernel's append) never interleave. Rotation by size: before an append that
 * would take the file past `maxBytes`, `audit.log` becomes `audit.log.1` (`.1` → `.2` …, the oldest beyond `keep`
 * is dropped), so no file grows past `maxBytes` unless a single line is larger (with several writing processes,
 * also by what the others wrote since this one last looked, at most a second ago). Nothing is ever rewritten in
 * place.
 *
 * Line format (`Entry`), fields in this order, absent ones omitted:
 * `{"ts":"2025-01-31T12:00:00.000Z","event":"input","caller":"share 9f…","caller_kind":"guest","share_id":"9f…",
 *   "session_id":"…","mode":"pty","bytes":14}`
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as AtomicFile from "@cmdop/node/AtomicFile"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as crypto from "node:crypto"
import * as path from "node:path"
import * as AuditWriter from "./internal/auditWriter.js"

/** The file's name inside `CmdopPaths.stateDir`. */
export const FILE_NAME = "audit.log"

/** Size at which the file is rotated: 10 MiB. */
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024

/** Rotated files kept (`audit.log.1` … `audit.log.3`). */
export const DEFAULT_KEEP = 3

/** RFC 3339 date-time (`2025-01-31T12:00:00.000Z`). */
export const Timestamp = Schema.String.pipe(
  Schema.pattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/),
  Schema.brand("@cmdop/agent/AuditTimestamp")
)

/** How the relay authenticated the caller; `null` on a line when the relay did not say. */
export const CallerKind = Schema.Literal("key", "user", "guest")
export type CallerKind = typeof CallerKind.Type

/** A lowercase hex SHA-256. */
export const Digest = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))

/**
 * One line of the audit log. Every line names the session and its caller (for `session_end`: the opener).
 * - `session_open`: `decision` (`"allow"`: it passed the gate, whose own line comes first) and `command_digest`;
 * - `input`: `bytes` that `caller` typed into the session since the previous line for the same caller and
 *   session (`ts` is the first byte's time);
 * - `session_end`: `exit_code` when known, `reason` (`exit`, `closed`, `idle`, `timeout`, `link closed`, or why it
 *   never ran), `duration_ms` when known;
 * - `gate`: one per decision of the machine's gate (`Gate.ts`), before anything runs: `decision` (`allow`, `deny`,
 *   or `ask` while held; an answered or expired ask gets a second line with its outcome), `user`, the gate's
 *   `mode`, `command_digest` (exec), `rule`, `approver`.
 */
export const Entry = Schema.Struct({
  ts: Timestamp,
  event: Schema.Literal("session_open", "session_end", "input", "gate"),
  decision: Schema.optionalWith(Schema.Literal("allow", "deny", "ask"), { exact: true }),
  caller: Schema.String,
  caller_kind: Schema.NullOr(CallerKind),
  share_id: Schema.NullOr(Schema.String),
  /** `gate` lines: the signed-in person's email, or null. */
  user: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true }),
  session_id: Schema.String,
  /** `exec` and `pty` for session lines; a `gate` line names the gate's mode (`exec`, `shell`, `attach`). */
  mode: Schema.Literal("exec", "pty", "shell", "attach"),
  command_digest: Schema.optionalWith(Digest, { exact: true }),
  /** `gate` lines: the deciding rule (`file:line`, `floor` or `default`) and who answered an `ask` (or null). */
  rule: Schema.optionalWith(Schema.String, { exact: true }),
  approver: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true }),
  bytes: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { exact: true }),
  exit_code: Schema.optionalWith(Schema.Int, { exact: true }),
  reason: Schema.optionalWith(Schema.String, { exact: true }),
  duration_ms: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { exact: true })
})
export type Entry = typeof Entry.Type

/** One line's codec: an `Entry` ⇄ its JSON text (without the newline). */
export const EntryLine = Schema.parseJson(Entry)

/**
 * The audit log could not be written or read. `reason`: `Io` (the file system said no), `Corrupt` (a line that is
 * not an entry: `path` and `line` name it), `Invalid` (an entry that does not encode, e.g. a malformed `ts`).
 */
export class AuditLogError extends Data.TaggedError("AuditLogError")<{
  readonly reason: "Io" | "Corrupt" | "Invalid"
  readonly path: string
  readonly line?: number
  readonly detail: string
}> {
  override get message(): string {
    const where = this.line === undefined ? this.path : `${this.path}:${this.line}`
    return `audit log ${where}: ${this.detail}`
  }
}

/** The machine's audit log. */
export class AuditLog extends Context.Tag("@cmdop/agent/AuditLog")<
  AuditLog,
  {
    /** Appends one line; lines from concurrent callers never interleave. */
    readonly append: (entry: Entry) => Effect.Effect<void, AuditLogError>
    /** Every retained entry, oldest first (for the file: `audit.log.3` … `audit.log.1`, then `audit.log`). */
    readonly read: Effect.Effect<ReadonlyArray<Entry>, AuditLogError>
  }
>() {}

/** Tuning for the file-backed log. */
export interface Options {
  /** Rotate before an append would take the file past this size. Default 10 MiB. */
  readonly maxBytes?: number
  /** Rotated files kept. Default 3. */
  readonly keep?: number
}

// --- building lines -------------------------------------------------------------------------------------------------

/**
 * `millis` (epoch) as the `ts` of a line. `toISOString` always yields what `Timestamp` accepts (or throws for an
 * invalid date), so the brand is applied without running the pattern again: this is on every session's path, and
 * `encodeEntry` validates the whole line anyway.
 */
export const timestamp = (millis: number): Entry["ts"] => new Date(millis).toISOString() as Entry["ts"]

/** SHA-256 hex of `text`. */
export const digest = (text: string): string => crypto.createHash("sha256").update(text, "utf8").digest("hex")

/** The `command_digest` of an exec session: SHA-256 of its argv joined by NUL. */
export const digestArgv = (argv: ReadonlyArray<string>): string => digest(argv.join("\0"))

/** The caller fields of a line, from the link's `Caller` (absent or empty strings: the relay did not say). */
export const callerFields = (
  caller: { readonly kind: string; readonly principal: string; readonly shareId?: string | undefined } | undefined
): Pick<Entry, "caller" | "caller_kind" | "share_id"> => {
  const kind = caller?.kind
  return {
    caller: caller?.principal ?? "",
    caller_kind: isCallerKind(kind) ? kind : null,
    share_id: caller?.shareId === undefined || caller.shareId === "" ? null : caller.shareId
  }
}

const isCallerKind = Schema.is(CallerKind)

// --- implementations ------------------------------------------------------------------------------------------------

const decodeLine = Schema.decodeUnknown(EntryLine)
const validateEntry = Schema.validateEither(Entry)
const FIELDS = Object.keys(Entry.fields) as ReadonlyArray<keyof Entry>

/**
 * An entry's line (without the newline): exactly what `EntryLine` encodes (the property test says so), built by
 * validating the entry and writing its fields in the schema's order. `Schema.encode(EntryLine)` costs several times
 * more, and this runs before every session.
 */
export const encodeEntry = (file: string, entry: Entry): Effect.Effect<string, AuditLogError> => {
  const valid = validateEntry(entry)
  if (Either.isLeft(valid))
    return Effect.fail(
      new AuditLogError({
        reason: "Invalid",
        path: file,
        detail: ParseResult.TreeFormatter.formatErrorSync(valid.left)
      })
    )
  const ordered: Record<string, unknown> = {}
  for (const key of FIELDS) if (entry[key] !== undefined) ordered[key] = entry[key]
  return Effect.succeed(JSON.stringify(ordered))
}

/** Decodes a file's text; blank lines are skipped, anything else that is not an entry is an error naming the line. */
const decodeText = (file: string, text: string) =>
  Effect.forEach(
    text.split("\n").flatMap((line, index) => (line.trim() === "" ? [] : [{ line, number: index + 1 }])),
    ({ line, number }) =>
      decodeLine(line).pipe(
        Effect.mapError(
          (error) =>
            new AuditLogError({
              reason: "Corrupt",
              path: file,
              line: number,
              detail: ParseResult.TreeFormatter.formatErrorSync(error)
            })
        )
      )
  )

const ioError = (file: string) => (error: unknown) =>
  new AuditLogError({ reason: "Io", path: file, detail: error instanceof Error ? error.message : String(error) })

/**
 * The file-backed log at `file` (see the module header). The file is opened at the first line and stays open for
 * the scope: each line is then one synchronous `write(2)` on that descriptor, nothing else (no stat, open or close
 * per line). Synchronous on purpose: a line of a few hundred bytes costs microseconds in the kernel, far less than
 * a round trip through libuv's thread pool, and when `append` returns the line is in the kernel (a crash of the
 * agent loses nothing it acknowledged), in the order the appends ran. Whether the path still names the open file
 * (another writer rotated it, or the directory was removed) is checked before rotating and at most once a second.
 */
export const makeFile = (
  file: string,
  options: Options = {}
): Effect.Effect<AuditLog["Type"], never, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const writer = new AuditWriter.Writer(file, {
      maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
      keep: Math.max(0, Math.floor(options.keep ?? DEFAULT_KEEP))
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => writer.close()))
    const dir = path.dirname(file)
    // 0700 directory (once, and again if it vanished); the descriptor opens with 0600.
    const prepare = Effect.provideService(AtomicFile.ensurePrivateDir(dir), FileSystem.FileSystem, fs).pipe(
      Effect.mapError(ioError(dir))
    )
    const write = (bytes: Uint8Array, now: number) =>
      Effect.try({ try: () => writer.write(bytes, now), catch: (error) => error })

    const append = (entry: Entry) =>
      Effect.flatMap(encodeEntry(file, entry), (line) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const bytes = Buffer.from(line + "\n", "utf8")
          return (writer.isOpen ? write(bytes, now) : Effect.zipRight(prepare, write(bytes, now))).pipe(
            // The directory was removed under us: make it again, once.
            Effect.catchIf(AuditWriter.isNotFound, () => Effect.zipRight(prepare, write(bytes, now))),
            Effect.mapError((error) => (error instanceof AuditLogError ? error : ioError(file)(error)))
          )
        })
      )

    // Synchronous too, so it never sees a rotation half done (only tests and tools read the log).
    const read = Effect.flatMap(Effect.try({ try: () => writer.readAll(), catch: ioError(file) }), (texts) =>
      Effect.map(
        Effect.forEach(texts, ({ name, text }) => decodeText(name, text)),
        (parts) => parts.flat() as ReadonlyArray<Entry>
      )
    )

    return AuditLog.of({ append, read })
  })

/** The file-backed log at `<stateDir>/audit.log`, for the agent daemon. */
export const make = (
  options: Options = {}
): Effect.Effect<AuditLog["Type"], never, FileSystem.FileSystem | CmdopPaths | Scope.Scope> =>
  Effect.flatMap(CmdopPaths, (paths) => makeFile(path.join(paths.stateDir, FILE_NAME), options))

/** The file-backed log at `<stateDir>/audit.log` (see the module header). */
export const layer = (options: Options = {}): Layer.Layer<AuditLog, never, FileSystem.FileSystem | CmdopPaths> =>
  Layer.scoped(AuditLog, make(options))

/** A log that keeps its lines (the same JSON text the file would hold) in memory: for tests and embedding. */
export const makeMemory: Effect.Effect<AuditLog["Type"]> = Effect.sync(() => {
  const lines: Array<string> = []
  const where = "(memory)"
  return AuditLog.of({
    append: (entry) =>
      Effect.flatMap(encodeEntry(where, entry), (line) =>
        Effect.sync(() => {
          lines.push(line)
        })
      ),
    read: Effect.suspend(() => decodeText(where, lines.join("\n")))
  })
})

/** The in-memory log (see {@link makeMemory}). */
export const layerMemory: Layer.Layer<AuditLog> = Layer.effect(AuditLog, makeMemory)
