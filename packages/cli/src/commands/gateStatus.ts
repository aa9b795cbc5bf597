/**
 * The gate's part of `cmdop agent status`: with a daemon running, what it reports (`GateFiles`: the policy in force,
 * the last load error, pending approvals); without one, what the default file on disk would give.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as GateFiles from "@cmdop/agent/GateFiles"
import * as Explain from "@cmdop/gate/Explain"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as Effect from "effect/Effect"

export const NO_GATE = "no gate configured: keys, users and guests allowed exec and shell"

/** What applies while the file has never loaded (invalid since the agent started): its defaults, no rules. */
export const FILE_DEFAULTS_IN_FORCE =
  "no version of it has loaded yet, so the file defaults are in force (keys and users allowed, guests denied) until it is fixed"

export interface GateView {
  readonly path: string
  readonly configured: boolean
  readonly rules: number
  readonly error: string | null
  /** Whether a good version of the file is in force (`false`: its defaults; only meaningful with `error`). */
  readonly loaded: boolean
  readonly pending: number
}

/** The gate as the running daemon reports it (`running`), or as the default file would configure it. */
export const describe = (running: boolean) =>
  Effect.gen(function* () {
    const reported = running ? yield* GateFiles.readStatus : undefined
    if (reported !== undefined)
      return {
        path: reported.path,
        configured: reported.configured,
        rules: reported.rules,
        error: reported.error,
        loaded: reported.loaded_at !== null,
        pending: reported.pending.length
      } satisfies GateView
    const paths = yield* CmdopPaths
    const fs = yield* FileSystem.FileSystem
    const exists = yield* fs.exists(paths.permissions).pipe(Effect.orElseSucceed(() => false))
    if (!exists)
      return {
        path: paths.permissions,
        configured: false,
        rules: 0,
        error: null,
        loaded: false,
        pending: 0
      } satisfies GateView
    const checked = yield* Effect.either(Explain.checkFile(paths.permissions))
    return {
      path: paths.permissions,
      configured: true,
      rules: checked._tag === "Right" ? checked.right.rules.length : 0,
      error: checked._tag === "Left" ? checked.left.message : null,
      loaded: checked._tag === "Right",
      pending: 0
    } satisfies GateView
  })

/** Rows for the status table. */
export const lines = (gate: GateView): ReadonlyArray<[string, string]> => {
  if (!gate.configured) return [["gate", `${NO_GATE} (no ${gate.path})`]]
  const rows: Array<[string, string]> = [["gate", `${gate.path} (${gate.rules} rule${gate.rules === 1 ? "" : "s"})`]]
  if (gate.error !== null)
    rows.push([
      "gate error",
      `${gate.error}; ${gate.loaded ? "the last good policy stays in force" : FILE_DEFAULTS_IN_FORCE}`
    ])
  if (gate.pending > 0) rows.push(["approvals", `${gate.pending} waiting: cmdop agent approvals`])
  return rows
}

/**
 * What `agent start` warns of before the daemon runs: the policy file exists and does not validate, so the agent
 * runs on the file's defaults, not the rules it holds (a started agent does not refuse it: a machine rebooted with
 * a broken file must still come online, and be repairable remotely). `undefined` when there is nothing to say.
 */
export const startWarning = (file: string | undefined) =>
  Effect.gen(function* () {
    const target = file ?? (yield* CmdopPaths).permissions
    const fs = yield* FileSystem.FileSystem
    if (!(yield* fs.exists(target).pipe(Effect.orElseSucceed(() => false)))) return undefined
    const checked = yield* Effect.either(Explain.checkFile(target))
    return checked._tag === "Left"
      ? `warning: ${checked.left.message}; ${FILE_DEFAULTS_IN_FORCE} — "cmdop agent permissions check" shows the problem`
      : undefined
  })
