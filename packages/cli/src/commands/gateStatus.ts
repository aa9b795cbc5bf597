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

export interface GateView {
  readonly path: string
  readonly configured: boolean
  readonly rules: number
  readonly error: string | null
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
        pending: reported.pending.length
      } satisfies GateView
    const paths = yield* CmdopPaths
    const fs = yield* FileSystem.FileSystem
    const exists = yield* fs.exists(paths.permissions).pipe(Effect.orElseSucceed(() => false))
    if (!exists)
      return { path: paths.permissions, configured: false, rules: 0, error: null, pending: 0 } satisfies GateView
    const checked = yield* Effect.either(Explain.checkFile(paths.permissions))
    return {
      path: paths.permissions,
      configured: true,
      rules: checked._tag === "Right" ? checked.right.rules.length : 0,
      error: checked._tag === "Left" ? checked.left.message : null,
      pending: 0
    } satisfies GateView
  })

/** Rows for the status table. */
export const lines = (gate: GateView): ReadonlyArray<[string, string]> => {
  if (!gate.configured) return [["gate", `${NO_GATE} (no ${gate.path})`]]
  const rows: Array<[string, string]> = [["gate", `${gate.path} (${gate.rules} rule${gate.rules === 1 ? "" : "s"})`]]
  if (gate.error !== null) rows.push(["gate error", `${gate.error}; the last good policy stays in force`])
  if (gate.pending > 0) rows.push(["approvals", `${gate.pending} waiting: cmdop agent approvals`])
  return rows
}
