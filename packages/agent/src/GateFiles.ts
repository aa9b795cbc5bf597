/**
 * How the running daemon and the `cmdop agent …` commands on the same machine talk about the gate: files under
 * `<stateDir>/gate/` (a 0700 directory, files 0600, so only the agent's user can read or answer).
 *
 * - `status.json`, rewritten by the daemon when something changes (at most every `SYNC_INTERVAL`): the policy file,
 *   whether a gate is configured, the last load error (an invalid edit keeps the last good policy), and the
 *   pending approvals. `cmdop agent status` and `cmdop agent approvals` read it.
 * - `answers/<approval id>.json`, written by `cmdop agent approve|deny`: the daemon picks each up within
 *   `SYNC_INTERVAL`, answers the request, and removes the file.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as AtomicFile from "@cmdop/node/AtomicFile"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import { PolicyError } from "@cmdop/gate/PolicyError"
import { PolicyStore } from "@cmdop/gate/PolicyStore"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as path from "node:path"
import type { Gate } from "./Gate.js"

/** How often the daemon syncs the files. */
export const SYNC_INTERVAL = Duration.millis(250)

export const Pending = Schema.Struct({
  id: Schema.String,
  session_id: Schema.String,
  caller: Schema.String,
  caller_kind: Schema.Literal("key", "user", "guest"),
  share_id: Schema.NullOr(Schema.String),
  user: Schema.NullOr(Schema.String),
  mode: Schema.Literal("exec", "shell", "attach"),
  command: Schema.String,
  rule: Schema.String,
  created_at: Schema.Number,
  expires_at: Schema.Number
})

/** The contents of `status.json`. */
export const Status = Schema.Struct({
  pid: Schema.Int,
  path: Schema.String,
  configured: Schema.Boolean,
  rules: Schema.Int,
  /** The load error of the file on disk (the policy in force is the last good one), if any. */
  error: Schema.NullOr(Schema.String),
  loaded_at: Schema.NullOr(Schema.Number),
  pending: Schema.Array(Pending)
})
export type Status = typeof Status.Type

/** What `approve` / `deny` leaves for the daemon. */
export const AnswerFile = Schema.Struct({
  approve: Schema.Boolean,
  for_link: Schema.Boolean,
  approver: Schema.String
})
export type AnswerFile = typeof AnswerFile.Type

export const dir = Effect.map(CmdopPaths, (paths) => path.join(paths.stateDir, "gate"))

const statusJson = Schema.parseJson(Status)
const answerJson = Schema.parseJson(AnswerFile)

/** The daemon's last `status.json`, if any (a daemon that is not running may have left one: check its pid). */
export const readStatus: Effect.Effect<Status | undefined, never, FileSystem.FileSystem | CmdopPaths> = Effect.gen(
  function* () {
    const text = yield* AtomicFile.readIfExists(path.join(yield* dir, "status.json")).pipe(
      Effect.orElseSucceed(() => undefined)
    )
    if (text === undefined) return undefined
    return yield* Schema.decodeUnknown(statusJson)(text).pipe(Effect.orElseSucceed(() => undefined))
  }
)

/** Leaves an answer for the daemon (`cmdop agent approve|deny`). */
export const writeAnswer = (id: string, answer: AnswerFile) =>
  Effect.gen(function* () {
    const answers = path.join(yield* dir, "answers")
    yield* AtomicFile.ensurePrivateDir(answers)
    yield* AtomicFile.write(path.join(answers, `${path.basename(id)}.json`), yield* Schema.encode(answerJson)(answer))
  })

/** The daemon's side: keeps `status.json` current and takes answers, for the lifetime of the scope. */
export const serve = (
  gate: Gate["Type"]
): Effect.Effect<void, never, FileSystem.FileSystem | CmdopPaths | PolicyStore | Scope.Scope> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const store = yield* PolicyStore
    const base = yield* dir
    const answers = path.join(base, "answers")
    yield* AtomicFile.ensurePrivateDir(answers).pipe(Effect.orDie)
    let written = ""
    const sync = Effect.gen(function* () {
      const status = yield* store.status
      const pending = yield* SubscriptionRef.get(gate.approvals.pending)
      const text = yield* Schema.encode(statusJson)({
        pid: process.pid,
        path: status.path,
        configured: status.policy !== undefined,
        rules: status.policy?.rules.length ?? 0,
        error: status.error?.message ?? null,
        loaded_at: status.loadedAt ?? null,
        pending: [...pending]
      })
      if (text !== written) {
        yield* AtomicFile.write(path.join(base, "status.json"), text)
        written = text
      }
      for (const name of yield* fs.readDirectory(answers)) {
        if (!name.endsWith(".json")) continue
        const file = path.join(answers, name)
        const answer = yield* fs
          .readFileString(file)
          .pipe(Effect.flatMap(Schema.decodeUnknown(answerJson)), Effect.either)
        yield* fs.remove(file).pipe(Effect.ignore)
        if (answer._tag === "Right")
          yield* gate.approvals.answer(name.slice(0, -".json".length), {
            approve: answer.right.approve,
            forLink: answer.right.for_link,
            approver: answer.right.approver
          })
      }
    }).pipe(Effect.catchAll((e) => Effect.logWarning(`gate: cannot sync ${base}: ${String(e)}`)))
    yield* sync
    yield* Effect.forkScoped(Effect.repeat(sync, Schedule.spaced(SYNC_INTERVAL)))
    yield* Effect.addFinalizer(() => fs.remove(path.join(base, "status.json")).pipe(Effect.ignore))
  })

/**
 * Checked by `cmdop agent start` before the daemon runs: a policy file that exists but is empty (or whitespace) is
 * an error naming it, since starting would otherwise run on the file defaults while the operator meant rules. (A
 * running daemon treats the same file as an invalid edit and keeps its last good policy.) No file at the default
 * path: no gate, fine. A file named with `--permissions` that does not exist is an error too: a typo in the path
 * (or in a unit's `--permissions`) would otherwise start the agent with no gate at all, guests allowed.
 */
export const checkAtStart = (
  file: string | undefined
): Effect.Effect<void, PolicyError, FileSystem.FileSystem | CmdopPaths> =>
  Effect.gen(function* () {
    const target = file ?? (yield* CmdopPaths).permissions
    const fs = yield* FileSystem.FileSystem
    if (file !== undefined && !(yield* fs.exists(file).pipe(Effect.orElseSucceed(() => true))))
      return yield* new PolicyError({
        file,
        line: 0,
        problem: "no such file, so the agent would run without a gate (keys, users and guests allowed)",
        hint: "fix the --permissions path or write the policy there (see docs/permissions.md); drop --permissions to run without a gate"
      })
    const text = yield* fs.readFileString(target).pipe(Effect.orElseSucceed(() => undefined))
    if (text !== undefined && text.trim() === "")
      return yield* new PolicyError({
        file: target,
        line: 0,
        problem: "the file is empty, so the agent would run without its rules",
        hint: "write the policy into it (see docs/permissions.md), or remove the file and restart the agent to run without a gate"
      })
  })
