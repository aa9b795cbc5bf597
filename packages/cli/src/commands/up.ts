/**
 * `cmdop up`: a complete local system in one command — a relay on the embedded store, a workspace `local` saved
 * as the active workspace in the local store (with the relay's gRPC and web addresses, for `connect` and `login`),
 * and this machine's agent registered and connected. Prints the next command to try; Ctrl-C stops everything
 * cleanly.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Workspace from "@cmdop/domain/Workspace"
import { WorkspaceStore } from "@cmdop/domain/WorkspaceStore"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as path from "node:path"
import { CliError } from "../CliError.js"
import * as Output from "../Output.js"
import { RelayHost } from "../RelayHost.js"
import { lockDataDir } from "./relayDataLock.js"

const LOCAL = Workspace.WorkspaceName.make("local")

/** How the user invoked us: `./bin/cmdop` from a checkout, `cmdop` when installed on PATH. */
const selfCommand = (): string => {
  const script = process.argv[1] ?? ""
  const relative = path.relative(process.cwd(), script)
  return script.endsWith(`${path.sep}bin${path.sep}cmdop`) && !relative.startsWith("..") ? `./${relative}` : "cmdop"
}

export const upCommand = Command.make(
  "up",
  {
    grpcPort: Options.integer("grpc-port").pipe(Options.withDescription("relay gRPC port"), Options.withDefault(50051)),
    httpPort: Options.integer("http-port").pipe(Options.withDescription("relay HTTP port"), Options.withDefault(8080)),
    dataDir: Options.directory("data-dir").pipe(
      Options.withDescription("relay data dir (default ~/.cmdop/relay)"),
      Options.optional
    )
  },
  (args) =>
    Effect.gen(function* () {
      const paths = yield* CmdopPaths
      const store = yield* WorkspaceStore
      const dataDir = Option.getOrElse(args.dataDir, () => paths.relayData)
      const step = (text: string) => Output.notice(`up: ${text}`)
      // What this run started, said once more when it ends (Ctrl-C, SIGTERM, "cmdop agent stop").
      const started: Array<string> = []
      yield* Effect.addFinalizer(() =>
        started.length === 0 ? Effect.void : step(`stopped ${started.reverse().join(" and ")}`)
      )

      const RelayServer = yield* Effect.promise(() => import("@cmdop/relay/RelayServer"))
      const { RelayStore } = yield* Effect.promise(() => import("@cmdop/relay/RelayStore"))
      const agent = yield* Effect.promise(() => import("../LocalAgent.js"))
      const relayHost = yield* RelayHost

      yield* step(`starting the relay (store ${dataDir}/relay.db)`)
      // One relay per embedded store, as `relay serve`: a second `up` (or a relay) on this data dir is refused.
      yield* lockDataDir(dataDir)
      const relayStore = yield* Layer.build(relayHost.store({ dataDir }))
      // People too (the same store `relay user add` writes), so the README's sign-in and `cmdop login` work on
      // the relay `up` runs.
      const accounts = yield* Layer.build(relayHost.accounts({ dataDir }))
      const relay = yield* RelayServer.serveWith(
        {
          host: "127.0.0.1",
          grpcPort: args.grpcPort,
          httpPort: args.httpPort,
          accounts: Layer.succeedContext(accounts),
          // The embedded store: key verdicts reused until its next commit (any process's).
          ...(relayHost.inMemory === true ? {} : { storeVersion: RelayServer.embeddedStoreVersion(dataDir) })
        },
        relayHost.describe({ dataDir })
      ).pipe(
        Effect.provide(relayStore),
        Effect.mapError((e) => new CliError({ message: e.message }))
      )
      const server = relay.grpcAddress
      started.push(`the relay (${server}, http ${relay.httpAddress})`)
      const admin = yield* Effect.provide(RelayStore, relayStore)

      // The workspace `local`: reuse a stored key the relay still accepts; otherwise create the workspace (or, when
      // it exists but its key was lost, rotate it — we are on the relay host) and save the key locally.
      const stored = Workspace.find(yield* store.load, LOCAL)
      const storedKey = stored?.api_key && Workspace.hasKey(stored) ? stored.api_key : undefined
      const accepted = storedKey ? Option.isSome(yield* admin.authenticateKey(storedKey).pipe(Effect.orDie)) : false
      const key: Redacted.Redacted<string> = accepted
        ? storedKey!
        : yield* admin.createWorkspace(LOCAL).pipe(
            Effect.map((c) => c.apiKey),
            Effect.catchIf(
              (e) => e.reason === "WorkspaceExists",
              () => admin.rotateKey(LOCAL)
            ),
            Effect.mapError((e) => new CliError({ message: e.message }))
          )
      yield* store.update((file) =>
        Effect.gen(function* () {
          const withKey = yield* Workspace.setKey(file, LOCAL, key, { create: true })
          const current = Workspace.find(withKey, LOCAL)!
          // The web address with it: `cmdop login` signs in there (on up's --http-port, not the default 8080).
          const next = Workspace.upsert(withKey, { ...current, server, web_url: relay.httpAddress })
          return [undefined, yield* Workspace.use(next, LOCAL)] as const
        })
      )
      yield* step(
        `workspace "local" is active in ${paths.display(paths.workspaces)} (relay ${server}, web ${relay.httpAddress})`
      )

      const registered = yield* agent.register({
        overrides: { workspace: "local" },
        hostname: undefined,
        name: undefined
      })
      const hostname = registered.machine?.hostname ?? "this-machine"
      yield* step(`registered this machine as ${hostname}`)

      const running = yield* agent.runningPid
      if (Option.isSome(running)) {
        yield* step(`an agent daemon is already running (pid ${running.value}); it connects with the active workspace`)
      } else {
        // No overrides: the daemon follows the active workspace, as a user-started one would.
        yield* agent
          .runDaemon({})
          .pipe(
            Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))),
            Effect.forkScoped
          )
        started.push(`the agent (machine ${hostname})`)
        yield* step("agent started")
      }
      yield* Output.line(`cmdop is up: relay ${server}, http ${relay.httpAddress}, machine ${hostname}`)
      yield* Output.line(`try:  ${selfCommand()} connect exec ${hostname} -- uptime`)
      yield* Output.line("Ctrl-C stops the relay and the agent")
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(Command.withDescription('run a relay, a workspace "local" and this machine\'s agent, all on this machine'))
