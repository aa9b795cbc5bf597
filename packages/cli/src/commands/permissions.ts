/**
 * `cmdop agent permissions check [PATH]` and `cmdop agent permissions explain --caller guest … -- <command…>`: test
 * this machine's `permissions.yaml` (default `~/.cmdop/permissions.yaml`, or `--permissions PATH`) before it
 * matters. `check` validates it (one line: the rule count and defaults, or the error with file, line and hint) and
 * warns about patterns that let a program run anything; `explain` prints which rule decides a request and why,
 * every part of a command line with its own verdict, and the floor. Both run locally; the daemon is not asked.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Decide from "@cmdop/gate/Decide"
import * as Explain from "@cmdop/gate/Explain"
import { warmUp } from "@cmdop/gate/Reader"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { CliError } from "../CliError.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"

const permissionsOption = Options.text("permissions").pipe(
  Options.withDescription("the policy file (default ~/.cmdop/permissions.yaml)"),
  Options.optional
)

/** The file to read: the argument or `--permissions`, else the default. */
const policyPath = (given: Option.Option<string>) =>
  Effect.map(CmdopPaths, (paths) => Option.getOrElse(given, () => paths.permissions))

/** The policy in force for `path`: `undefined` when there is no file (no gate). */
const loadPolicy = (path: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const exists = yield* fs.exists(path).pipe(Effect.orElseSucceed(() => false))
    if (!exists) return undefined
    return yield* Explain.checkFile(path).pipe(Effect.mapError((e) => new CliError({ message: e.message })))
  })

const check = Command.make(
  "check",
  {
    ...GlobalOptions.options,
    permissions: permissionsOption,
    path: Args.text({ name: "path" }).pipe(Args.withDescription("the file to check"), Args.optional)
  },
  ({ path, permissions, ...own }) =>
    Effect.gen(function* () {
      const g = GlobalOptions.merge(own, own)
      const file = yield* policyPath(Option.orElse(path, () => permissions))
      const paths = yield* CmdopPaths
      const fs = yield* FileSystem.FileSystem
      if (!(yield* fs.exists(file).pipe(Effect.orElseSucceed(() => false))))
        return yield* new CliError({
          message: `${paths.display(file)}: no such file; without it no gate is configured (keys, users and guests allowed exec and shell)`
        })
      const policy = yield* Explain.checkFile(file).pipe(Effect.mapError((e) => new CliError({ message: e.message })))
      const warnings = Explain.warnings(policy)
      if (g.json)
        return yield* Output.json({
          file,
          ok: true,
          rules: policy.rules.length,
          default: policy.defaults,
          warnings
        })
      yield* Output.line(Explain.summary(policy))
      for (const w of warnings) yield* Output.notice(`warning: ${w}`)
    })
).pipe(Command.withDescription("validate a permissions.yaml (default ~/.cmdop/permissions.yaml)"))

const explain = Command.make(
  "explain",
  {
    ...GlobalOptions.options,
    permissions: permissionsOption,
    caller: Options.choice("caller", ["key", "user", "guest"]).pipe(
      Options.withDescription("who asks: the workspace key, a signed-in user, or a share-link guest")
    ),
    user: Options.text("user").pipe(Options.withDescription("the user's email (caller user)"), Options.optional),
    share: Options.text("share").pipe(Options.withDescription("the share link id (caller guest)"), Options.optional),
    mode: Options.choice("mode", ["exec", "shell", "attach"]).pipe(
      Options.withDescription("exec a command, open an interactive shell, or attach to a live session"),
      Options.withDefault("exec" as const)
    ),
    shell: Options.boolean("shell").pipe(Options.withDescription("the command is a shell line (exec --shell)")),
    command: Args.text({ name: "command" }).pipe(Args.repeated, Args.withDescription("the command, after --"))
  },
  ({ caller, command, mode, permissions, share, shell, user, ...own }) =>
    Effect.gen(function* () {
      const g = GlobalOptions.merge(own, own)
      if (mode === "exec" && command.length === 0)
        return yield* new CliError({
          message: "no command given: cmdop agent permissions explain --caller guest -- <command…>",
          exitCode: 2
        })
      const policy = yield* loadPolicy(yield* policyPath(permissions))
      yield* warmUp
      const explanation = Decide.explain(policy, {
        caller: {
          kind: caller,
          ...Option.match(user, { onNone: () => ({}), onSome: (u) => ({ user: u }) }),
          ...Option.match(share, { onNone: () => ({}), onSome: (s) => ({ shareId: s }) })
        },
        mode,
        ...(mode === "exec" ? { argv: command, shell } : {})
      })
      if (g.json)
        return yield* Output.json({
          decision: explanation.decision.action,
          rule: explanation.decision.rule,
          reason: explanation.decision.reason,
          configured: explanation.decision.configured,
          parts: explanation.units.map((u) => ({
            text: u.unit.text,
            decision: u.action,
            rule: u.rule,
            reason: u.reason
          }))
        })
      yield* Output.line(Explain.render(explanation))
    })
).pipe(Command.withDescription("show which rule decides a request, and why (floor listed)"))

export const permissionsCommand = Command.make("permissions").pipe(
  Command.withDescription("this machine's gate: check permissions.yaml, explain a decision"),
  Command.withSubcommands([check, explain])
)
