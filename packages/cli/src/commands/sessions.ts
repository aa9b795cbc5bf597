/**
 * `cmdop connect <host> --list-sessions`: the interactive sessions running on a machine, to reattach with
 * `cmdop connect <host> --session <id>`.
 */
import { formatAge } from "@cmdop/domain/Age"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"

export const list = (g: GlobalOptions.Globals, host: string) =>
  Effect.gen(function* () {
    const Remote = yield* Effect.promise(() => import("../Remote.js"))
    const { machine, sessions } = yield* Remote.withClient(g, (client) => client.listSessions(host))
    const now = yield* Clock.currentTimeMillis
    if (g.json)
      return yield* Output.json({
        machine_id: machine.id,
        hostname: machine.hostname,
        sessions: sessions.map((s) => ({
          session_id: s.sessionId,
          command: s.command,
          size: `${s.cols}x${s.rows}`,
          viewers: s.viewers,
          owner: s.owner,
          created_at: new Date(s.createdAt).toISOString(),
          last_activity_at: new Date(s.lastActivityAt).toISOString()
        }))
      })
    if (sessions.length === 0)
      return yield* Output.notice(
        `no interactive sessions on ${machine.hostname}; start one with "cmdop connect ${machine.hostname}"`
      )
    yield* Output.line(
      Output.table(
        ["SESSION", "COMMAND", "SIZE", "VIEWERS", "IDLE", "OWNER"],
        sessions.map((s) => [
          s.sessionId,
          s.command,
          `${s.cols}x${s.rows}`,
          String(s.viewers),
          formatAge(now - s.lastActivityAt),
          s.owner
        ])
      )
    )
  })
