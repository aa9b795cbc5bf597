/**
 * `cmdop connect sessions <host>` (or `connect <host> --list-sessions`): the interactive sessions running on a
 * machine, to reattach with `cmdop connect <host> --session <id>`; and `--kill-session <id>`, which ends one on the
 * machine (its shell and every process it started) like `tmux kill-session`.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { formatAge } from "@cmdop/domain/Age"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { globals } from "../ConnectCommand.js"
import * as GlobalOptions from "../GlobalOptions.js"
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

/** Ends session `sessionId` on `host` and says how it ended. */
export const kill = (g: GlobalOptions.Globals, host: string, sessionId: string) =>
  Effect.gen(function* () {
    const Remote = yield* Effect.promise(() => import("../Remote.js"))
    const k = yield* Remote.withClient(g, (client) => client.killSession(host, sessionId.trim()))
    if (g.json)
      return yield* Output.json({
        machine_id: k.machine.id,
        hostname: k.machine.hostname,
        session_id: k.sessionId,
        ended: k.ended,
        exit_code: k.ended ? k.exitCode : null,
        signal: k.signal ?? null,
        reason: k.reason
      })
    if (!k.ended)
      return yield* Output.line(
        `asked ${k.machine.hostname} to end session ${k.sessionId}; it has not reported the end yet (check: cmdop connect sessions ${k.machine.hostname})`
      )
    const how = k.signal === undefined ? `exit ${k.exitCode}` : `SIG${k.signal}, exit ${k.exitCode}`
    yield* Output.line(
      `ended session ${k.sessionId} on ${k.machine.hostname}: its shell and processes are gone (${how})`
    )
  })

export const sessionsCommand = Command.make(
  "sessions",
  {
    ...GlobalOptions.options,
    killSession: Options.text("kill-session").pipe(
      Options.withDescription("end this session on the machine: its shell and every process it started"),
      Options.optional
    ),
    host: Args.text({ name: "host" }).pipe(Args.withDescription("the machine"))
  },
  ({ host, killSession, ...own }) =>
    Effect.flatMap(globals(own), (g) => (Option.isSome(killSession) ? kill(g, host, killSession.value) : list(g, host)))
).pipe(Command.withDescription("the interactive sessions running on a machine; --kill-session <id> ends one"))
