/**
 * What a change to the saved workspaces means for the agent running on this machine: it follows the active
 * workspace, so `workspace use`, `key set` and `set-key` make it re-register under the new one, and removing the
 * workspace it runs under takes its credential away. One notice line on stderr; nothing when no agent runs.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Output from "./Output.js"

const running = Effect.gen(function* () {
  const agent = yield* Effect.promise(() => import("./LocalAgent.js"))
  const pid = yield* agent.runningPid
  if (Option.isNone(pid)) return undefined
  const status = yield* agent.readStatus
  const workspace = Option.match(status, {
    onNone: () => "",
    onSome: (s) => ("workspace" in s ? s.workspace : "")
  })
  return { pid: pid.value, workspace }
}).pipe(Effect.orElseSucceed(() => undefined))

/** After the active workspace (or its key) changed to `workspace`. */
export const activeChanged = (workspace: string) =>
  Effect.flatMap(running, (agent) =>
    agent === undefined || agent.workspace === ""
      ? Effect.void
      : Output.notice(
          `cmdop: the agent on this machine (pid ${agent.pid}) follows the active workspace: it will re-register under workspace ${workspace}${agent.workspace === workspace ? " with this key" : ` (it runs under ${agent.workspace} now)`}`
        )
  )

/** After `workspace` was removed from the store. */
export const removed = (workspace: string) =>
  Effect.flatMap(running, (agent) =>
    agent === undefined || agent.workspace !== workspace
      ? Effect.void
      : Output.notice(
          `cmdop: warning: the agent on this machine (pid ${agent.pid}) runs under workspace ${workspace}; without it the agent has no credential and goes offline when it next reconnects — "cmdop connect workspace use <name>" gives it another, "cmdop agent stop" stops it`
        )
  )
