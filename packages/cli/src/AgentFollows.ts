/**
 * What a change to the saved workspaces means for the agent running on this machine: it follows the active
 * workspace, so `workspace use`, `key set` and `set-key` make it re-register under the new one, and removing the
 * workspace it runs under takes its credential away. One notice line on stderr; nothing when no agent runs.
 */
import { CredentialResolver } from "@cmdop/domain/CredentialResolver"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Output from "./Output.js"

/** The agent running on this machine and the workspace it runs under. */
export interface Running {
  readonly pid: number
  readonly workspace: string
}

/**
 * The agent running on this machine, if any. Taken before a change: the agent watches the store and may already
 * have followed by the time the change is reported.
 */
export const snapshot = Effect.gen(function* () {
  const agent = yield* Effect.promise(() => import("./LocalAgent.js"))
  const pid = yield* agent.runningPid
  if (Option.isNone(pid)) return undefined
  const status = yield* agent.readStatus
  const workspace = Option.match(status, {
    onNone: () => "",
    onSome: (s) => ("workspace" in s ? s.workspace : "")
  })
  return { pid: pid.value, workspace }
}).pipe(Effect.orElseSucceed((): Running | undefined => undefined))

/**
 * After the active workspace (or its key) changed to `workspace`; `agent` as it was before the change. When the
 * credential chain finds nothing the agent may use there (no key, or a stored one that is not sent to that relay),
 * the agent drops its connection and cannot connect again: a warning says so and why, not "it will re-register".
 */
export const activeChanged = (agent: Running | undefined, workspace: string) =>
  agent === undefined || agent.workspace === ""
    ? Effect.void
    : Effect.gen(function* () {
        const resolved = yield* Effect.either(
          Effect.flatMap(CredentialResolver, (resolver) => resolver.resolve({ workspace }))
        )
        if (Either.isLeft(resolved) && resolved.left._tag === "CredentialError")
          return yield* Output.notice(
            `cmdop: warning: the agent on this machine (pid ${agent.pid}) follows the active workspace and goes offline: under workspace ${workspace}, ${resolved.left.message}`
          )
        yield* Output.notice(
          `cmdop: the agent on this machine (pid ${agent.pid}) follows the active workspace: it will re-register under workspace ${workspace}${agent.workspace === workspace ? " with this key" : ` (it runs under ${agent.workspace} now)`}`
        )
      })

/** After `workspace` was removed from the store; `agent` as it was before the change. */
export const removed = (agent: Running | undefined, workspace: string) =>
  agent === undefined || agent.workspace !== workspace
    ? Effect.void
    : Output.notice(
        `cmdop: warning: the agent on this machine (pid ${agent.pid}) runs under workspace ${workspace}; without it the agent has no credential and goes offline when it next reconnects — "cmdop connect workspace use <name>" gives it another, "cmdop agent stop" stops it`
      )
