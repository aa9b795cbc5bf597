/**
 * `cmdop connect share <host> [--ttl 24h] [--session <id>] [--json]`, `share list [host]`, `share revoke <id>`:
 * share links, one token for one machine, for a guest without an account. The guest reaches only the sessions it
 * opens itself; `--session <id>` shares one live session of the owner's instead (pair debugging: join only, no
 * new shell, no command). The token is printed once, at minting; treat the URL like a password.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { formatInstant } from "@cmdop/domain/ShareError"
import * as ShareTtl from "@cmdop/domain/ShareTtl"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { CliError, ExitCode } from "../CliError.js"
import { globals } from "../ConnectCommand.js"
import * as Duration from "../Duration.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"
import { list } from "./shareList.js"
import { view } from "./shareView.js"

const remote = Effect.promise(() => import("../Remote.js"))

const mint = Command.make(
  "share",
  {
    ...GlobalOptions.options,
    ttl: Options.text("ttl").pipe(
      Options.withDescription(`lifetime, rounded up to whole hours (${ShareTtl.acceptedForms}); 0 = never expires`),
      Options.withDefault("24h")
    ),
    session: Options.text("session").pipe(
      Options.withDescription(
        'share one live interactive session instead (pair debugging): the guest may join it only (ids: the session list of "cmdop connect <host>")'
      ),
      Options.optional
    ),
    // Optional only so that `share list` / `share revoke` parse; minting needs it.
    host: Args.text({ name: "host" }).pipe(Args.withDescription("the one machine the link reaches"), Args.optional)
  },
  ({ host: maybeHost, session, ttl, ...own }) =>
    Effect.gen(function* () {
      const g = yield* globals(own)
      if (Option.isNone(maybeHost))
        return yield* new CliError({
          message: 'which machine? cmdop connect share <host> [--ttl 24h]; or "share list" / "share revoke <id>"',
          exitCode: ExitCode.usage
        })
      const host = maybeHost.value
      const seconds = yield* Either.match(ShareTtl.parse(ttl), {
        onLeft: (e) => Effect.fail(new CliError({ message: e.message, exitCode: ExitCode.usage })),
        onRight: Effect.succeed
      })
      // Links live whole hours: when that changes what was asked for, say so.
      const asked = yield* Effect.option(Duration.parse("--ttl", ttl))
      if (Option.isSome(asked) && asked.value !== seconds * 1000)
        yield* Output.notice(
          `cmdop: note: --ttl ${ttl} rounds up to whole hours: the link lives ${ShareTtl.format(seconds)}`
        )
      const Remote = yield* remote
      const sessionId = Option.getOrUndefined(session)
      const [minted, server] = yield* Remote.withClient(g, (client, resolved) =>
        Effect.map(
          client.createShare(host, seconds, sessionId === undefined ? {} : { sessionId }),
          (m) => [m, resolved.server] as const
        )
      )
      const expiresAt = minted.link.expiresAt === undefined ? null : formatInstant(minted.link.expiresAt)
      const machine = yield* Remote.withClient(g, (client) => client.resolveMachine(minted.link.machineId)).pipe(
        Effect.option
      )
      const gateConfigured = Option.isSome(machine) ? machine.value.gateConfigured : undefined
      const ungated = () =>
        Output.notice(
          `note: ${minted.link.machineHostname} has no gate configured (no permissions.yaml): the guest may run any command and open shells there, as the agent's user, who can read this workspace's key (~/.cmdop); see docs/permissions.md`
        )
      if (g.json) {
        // The warning goes to stderr as without --json; a script reads the flag, and the id it revokes the link by.
        if (gateConfigured === false) yield* ungated()
        return yield* Output.json({
          id: minted.link.id,
          url: minted.url,
          token: minted.token,
          machine_id: minted.link.machineId,
          ...(minted.link.sessionId === undefined ? {} : { session_id: minted.link.sessionId }),
          expires_at: expiresAt,
          gate_configured: gateConfigured ?? null
        })
      }
      yield* Output.line(
        minted.link.sessionId === undefined
          ? `share link for ${minted.link.machineHostname} (id ${minted.link.id}):`
          : `share link for session ${minted.link.sessionId} on ${minted.link.machineHostname} only (id ${minted.link.id}):`
      )
      yield* Output.line(`  ${minted.url}`)
      yield* Output.line(`token: ${minted.token}`)
      yield* Output.line(
        expiresAt === null ? "expires: never" : `expires: ${expiresAt} (in ${ShareTtl.format(seconds)})`
      )
      yield* Output.line(
        `guest CLI: cmdop connect --api-key ${minted.token} --server ${server} exec ${minted.link.machineHostname} -- uptime`
      )
      yield* Output.notice(
        `Treat this URL like a password: anyone who has it can reach ${minted.link.machineHostname} until it ${
          expiresAt === null ? "is revoked" : "expires"
        }. Revoke it with "cmdop connect share revoke ${minted.link.id}".`
      )
      if (expiresAt === null)
        yield* Output.notice("warning: this link never expires (--ttl 0); avoid that in production")
      if (gateConfigured === false) yield* ungated()
    })
).pipe(Command.withDescription("mint a share link: one token, one machine, for a guest without an account"))

const revoke = Command.make(
  "revoke",
  { ...GlobalOptions.options, id: Args.text({ name: "id" }).pipe(Args.withDescription("the link id")) },
  ({ id, ...own }) =>
    Effect.gen(function* () {
      const g = yield* globals(own)
      const Remote = yield* remote
      const link = yield* Remote.withClient(g, (client) => client.revokeShare(id))
      // Absent: the node of a cluster that holds the machine could not be asked; it ends them on the cluster event.
      const ended = link.sessionsEnded
      if (g.json)
        return yield* Output.json({
          ...view(link, yield* Clock.currentTimeMillis),
          already_revoked: link.alreadyRevoked === true,
          sessions_ended: ended ?? null,
          ...(ended === undefined ? { sessions_end_on_other_node: true } : {})
        })
      const sessions = `${ended} guest session${ended === 1 ? "" : "s"}`
      const elsewhere = "its guests' sessions on the machine end within a second (the machine is on another relay node)"
      yield* Output.line(
        link.alreadyRevoked === true
          ? `share link ${link.id} for ${link.machineHostname} was already revoked${
              link.revokedAt === undefined ? "" : ` at ${formatInstant(link.revokedAt)}`
            }; ${
              ended === undefined
                ? elsewhere
                : ended === 0
                  ? "no guest session of it was still running"
                  : `ended ${sessions} still running on the machine`
            }`
          : `revoked share link ${link.id} for ${link.machineHostname}; ${
              ended === undefined ? elsewhere : `ended ${sessions} on the machine`
            }`
      )
    })
).pipe(Command.withDescription("revoke a share link now; its guests' live sessions end at once"))

export const shareCommand = mint.pipe(Command.withSubcommands([list, revoke]))
