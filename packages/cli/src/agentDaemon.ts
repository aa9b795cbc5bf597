/**
 * `cmdop agent start --foreground` without the command tree (see `agentMain.ts`): the checks `commands/agent.ts`
 * makes before it starts the daemon, the daemon itself as `LocalAgent.runDaemon` runs it, on the services of
 * `Layers.live` it uses, and the failure handling of `Cli.ts`'s `main` for what the daemon can fail with.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as GateFiles from "@cmdop/agent/GateFiles"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as OAuthSessionLive from "@cmdop/node/OAuthSessionLive"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as nodePath from "node:path"
import type * as AgentStartArgv from "./AgentStartArgv.js"
import { ExitCode } from "./CliError.js"
import * as Duration from "./Duration.js"
import * as LocalAgent from "./LocalAgent.js"
import * as Messages from "./Messages.js"
import * as Output from "./Output.js"
import { checkServerList } from "./ServerList.js"
import * as Usage from "./Usage.js"

/** The part of `Layers.live` the daemon uses: `$HOME/.cmdop`, the file system, the OAuth session of `cmdop login`. */
const live = Layer.mergeAll(
  CmdopPaths.layer,
  NodeFileSystem.layer,
  OAuthSessionLive.layer.pipe(Layer.provide(Layer.merge(CmdopPaths.layer, NodeFileSystem.layer)))
)

/** A tagged error's user message, if it has one we wrote for users (as in `Cli.ts`). */
const userMessage = (error: unknown): string | undefined => {
  if (typeof error === "object" && error !== null && "_tag" in error && "message" in error) {
    const message = (error as { message: unknown }).message
    if (typeof message === "string" && message !== "") return message
  }
  return undefined
}

/**
 * The daemon to run, with every service provided and every outcome an exit code (as `main` in `Cli.ts` gives it);
 * or `undefined` when a check refuses the command line, which the whole CLI then reports.
 */
export const prepare = (
  args: ReadonlyArray<string>,
  parsed: AgentStartArgv.Parsed
): Effect.Effect<Effect.Effect<number> | undefined> =>
  Effect.gen(function* () {
    if (Usage.check(args) !== undefined) return undefined
    yield* checkServerList(parsed.server)
    const idleMs = yield* Duration.parse("--session-idle", parsed.sessionIdle ?? "12h")
    const permissions = parsed.permissions === undefined ? undefined : nodePath.resolve(parsed.permissions)
    yield* GateFiles.checkAtStart(permissions)
    const daemon = LocalAgent.runDaemon({
      overrides: {
        apiKey: parsed.apiKey === undefined ? undefined : Redacted.make(parsed.apiKey),
        server: parsed.server,
        workspace: parsed.workspace
      },
      pty: { idleTimeout: idleMs },
      ...(permissions === undefined ? {} : { permissions })
    }).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))),
      Logger.withMinimumLogLevel(LogLevel.Info)
    )
    /** One line on stderr; with --json also the failure as one JSON document on stdout (unless one is out). */
    const failed = (line: string, code: number) =>
      Effect.gen(function* () {
        yield* Console.error(`cmdop: ${line}`)
        if (parsed.json && !(yield* FiberRef.get(Output.printedJson))) yield* Output.json(Output.failure(line, code))
        return code
      })
    return daemon.pipe(
      Effect.as(ExitCode.ok as number),
      Effect.catchAll((error: unknown) =>
        failed(Messages.forUser(userMessage(error) ?? String(error)) + Messages.hintFor(error, args), ExitCode.failure)
      ),
      Effect.catchAllCause((cause) =>
        failed(`internal error (please report): ${Cause.pretty(cause).split("\n")[0]}`, ExitCode.failure)
      ),
      Effect.locally(Output.printedJson, false),
      Effect.provide(live)
    )
  }).pipe(
    Effect.catchAll(() => Effect.succeed(undefined)),
    Effect.provide(live)
  )
