/**
 * The `cmdop connect` command's own flags (the globals, `--list`, `--online`, an optional host). Subcommands read
 * them through this command's tag, which is why it lives apart from the tree that attaches the subcommands.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as GlobalOptions from "./GlobalOptions.js"

export const connectBase = Command.make("connect", {
  ...GlobalOptions.options,
  list: Options.boolean("list").pipe(Options.withDescription("list the machines of the workspace")),
  online: Options.boolean("online").pipe(Options.withDescription("with --list: only machines that are online")),
  session: Options.text("session").pipe(
    Options.withDescription("attach to this existing interactive session instead of opening a new one"),
    Options.optional
  ),
  detachKeys: Options.text("detach-keys").pipe(
    Options.withDescription(
      "keys that detach, docker-style (ctrl-p,ctrl-q; ctrl-d for the old single key); ~. always works"
    ),
    Options.optional
  ),
  listSessions: Options.boolean("list-sessions").pipe(
    Options.withDescription("list the interactive sessions running on <host>")
  ),
  killSession: Options.text("kill-session").pipe(
    Options.withDescription("end this interactive session on <host> (its shell and processes)"),
    Options.optional
  ),
  host: Args.text({ name: "host" }).pipe(
    Args.withDescription("machine to attach to (hostname, name, id, a prefix of one, or a unique part of a name)"),
    Args.optional
  )
})

/** The merged global flags for a subcommand of `connect`, given the subcommand's own. */
export const globals = (own: GlobalOptions.Raw) => Effect.map(connectBase, (parent) => GlobalOptions.merge(parent, own))
