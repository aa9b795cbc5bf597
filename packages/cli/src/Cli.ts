/**
 * The `cmdop` command tree and `main`, which runs it and turns every outcome into an exit code: 0, the remote
 * command's own code, 2 for usage errors, 124 for timeouts, 255 with one line on stderr for the CLI's failures.
 */
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import { CliError, ExitCode, ExitWith } from "./CliError.js"
import { connectBase } from "./ConnectCommand.js"
import * as Help from "./Help.js"
import * as UnknownFlag from "./UnknownFlag.js"
import * as GlobalOptions from "./GlobalOptions.js"
import * as RemoteArgv from "./RemoteArgv.js"
import * as Completion from "./Completion.js"
import * as Messages from "./Messages.js"
import * as Output from "./Output.js"
import * as Usage from "./Usage.js"
import { Stdio } from "./Stdio.js"
import * as attach from "./commands/attach.js"
import { execCommand } from "./commands/exec.js"
import * as picker from "./commands/picker.js"
import * as sessions from "./commands/sessions.js"
import { shareCommand } from "./commands/share.js"
import { keyCommand, setKeyCommand } from "./commands/key.js"
import * as machines from "./commands/machines.js"
import { agentCommand } from "./commands/agent.js"
import { connectApprovalsCommands } from "./commands/connectApprovals.js"
import { relayCommand } from "./commands/relay.js"
import { loginCommand } from "./commands/login.js"
import { logoutCommand } from "./commands/logout.js"
import { upCommand } from "./commands/up.js"
import { whoamiCommand } from "./commands/whoami.js"
import { workspaceCommand, wsAlias } from "./commands/workspace.js"

export const VERSION = "0.1.0"

const connect = connectBase.pipe(
  Command.withHandler((args) =>
    Effect.gen(function* () {
      const g = GlobalOptions.merge(args, args)
      if (args.list) return yield* machines.list(g, args.online)
      if (Option.isSome(args.host) && UnknownFlag.isFlag(args.host.value))
        return yield* UnknownFlag.error(args.host.value, "connect", [
          "--list",
          "--online",
          "--session",
          "--list-sessions",
          "--kill-session",
          "--detach-keys",
          ...UnknownFlag.globalFlags
        ])
      if (Option.isSome(args.host)) {
        if (args.listSessions) return yield* sessions.list(g, args.host.value)
        if (Option.isSome(args.killSession)) return yield* sessions.kill(g, args.host.value, args.killSession.value)
        return yield* attach.attach(g, args.host.value, {
          sessionId: Option.getOrUndefined(args.session),
          detachKeys: Option.getOrUndefined(args.detachKeys)
        })
      }
      if (g.interactive && (yield* Stdio).interactive)
        return yield* picker.pickAndAttach(g, { detachKeys: Option.getOrUndefined(args.detachKeys) })
      return yield* new CliError({
        message:
          'no host given: cmdop connect <host> (the machine picker needs a terminal and no --json/-q); see "cmdop connect --help"',
        exitCode: ExitCode.usage
      })
    })
  ),
  Command.withDescription("reach machines through the relay, and manage local workspaces and keys"),
  Command.withSubcommands([
    execCommand,
    sessions.sessionsCommand,
    shareCommand,
    workspaceCommand,
    wsAlias,
    keyCommand,
    setKeyCommand,
    whoamiCommand,
    ...connectApprovalsCommands
  ])
)

export const root = Command.make("cmdop").pipe(
  Command.withDescription("cmdop connect: remote machine access through a relay"),
  Command.withSubcommands([connect, agentCommand, relayCommand, upCommand, loginCommand, logoutCommand])
)

const run = Command.run(root, { name: "cmdop", version: VERSION })

/** `cmdop` and the command words of `args` (up to the first flag or `--`), for usage hints. */
const usagePath = (args: ReadonlyArray<string>): string => {
  const words: Array<string> = []
  for (const a of args) {
    if (a.startsWith("-")) break
    words.push(a)
    if (words.length === 3) break
  }
  return ["cmdop", ...words].join(" ")
}

/**
 * The exit status of a command that a signal ended before it finished (Ctrl-C while `login` waits for the browser,
 * while `exec` dials or resolves the machine, …): 130 for SIGINT and 143 for SIGTERM, the status of a process
 * killed by it, so `cmdop login && …` does not go on as if it had succeeded (it exited 0). The services, `relay
 * serve`, `agent start` (as the daemon's own bundle, `agentMain.ts`) and `up`, are stopped by a signal by design
 * and still exit 0, which service managers read as a clean stop.
 * (`exec` and `attach` catch the signals themselves while the session runs, and answer with their own status.)
 */
export const interruptedExitCode = (args: ReadonlyArray<string>, signal: "SIGINT" | "SIGTERM"): number => {
  const words = usagePath(args).split(" ").slice(1)
  const service =
    (words[0] === "relay" && words[1] === "serve") ||
    (words[0] === "agent" && words[1] === "start") ||
    words[0] === "up"
  return service ? ExitCode.ok : signal === "SIGINT" ? 130 : 143
}

/** A tagged error's user message, if it has one we wrote for users. */
const userMessage = (error: unknown): string | undefined => {
  if (typeof error === "object" && error !== null && "_tag" in error && "message" in error) {
    const message = (error as { message: unknown }).message
    if (typeof message === "string" && message !== "") return message
  }
  return undefined
}

/** Runs the CLI on `argv` (as in `process.argv`) and returns the exit code. Never fails. */
export const main = (argv: ReadonlyArray<string>) => {
  // The remote command of `exec` is the remote's, never ours: taken out before anything parses flags.
  const { cli, remote } = RemoteArgv.split(argv.slice(2))
  if (cli.length === 1 && ["--version", "-v", "version"].includes(cli[0]!))
    return Effect.as(Console.log(`cmdop ${VERSION}`), ExitCode.ok as number)
  const overview = Help.overviewFor(cli)
  if (overview !== undefined) return Effect.as(Console.log(overview), ExitCode.ok as number)
  if (cli[0] === "completion" || cli[0] === Completion.COMPLETE) return Completion.run(cli)
  const dashes = cli.indexOf("--")
  const json = (dashes === -1 ? cli : cli.slice(0, dashes)).includes("--json")
  /**
   * One line on stderr; with --json also the failure as one JSON document on stdout (unless one is out). The line may
   * hold a server's text (a relay's error message): its control characters are shown, not sent to the terminal.
   */
  const failed = (line: string, code: number) =>
    Effect.gen(function* () {
      yield* Console.error(`cmdop: ${Output.printable(line)}`)
      if (json && !(yield* FiberRef.get(Output.printedJson))) yield* Output.json(Output.failure(line, code))
      return code
    })
  const misuse = Usage.check(cli)
  if (misuse !== undefined) return failed(misuse.message, ExitCode.usage)
  return run([...argv.slice(0, 2), ...cli]).pipe(
    Effect.locally(RemoteArgv.current, remote),
    Effect.as(ExitCode.ok as number),
    Effect.catchAll((error: unknown) => {
      if (error instanceof ExitWith) return Effect.succeed(error.code)
      if (ValidationError.isValidationError(error))
        // @effect/cli has printed what is wrong; say where the usage is.
        return failed(`see "${usagePath(cli)} --help"`, ExitCode.usage)
      if (error instanceof CliError) return failed(Messages.forUser(error.message), error.exitCode ?? ExitCode.failure)
      const message = Messages.forUser(userMessage(error) ?? String(error)) + Messages.hintFor(error, cli)
      return failed(message, ExitCode.failure)
    }),
    Effect.catchAllCause((cause) =>
      failed(`internal error (please report): ${Cause.pretty(cause).split("\n")[0]}`, ExitCode.failure)
    ),
    Effect.locally(Output.printedJson, false)
  )
}
