/**
 * `cmdop agent register | start [--foreground] [--permissions PATH] | stop | status | install | uninstall` (the
 * systemd unit: `agentInstall.ts`), and the gate's
 * `permissions check|explain`, `approvals`, `approve`, `deny` (`permissions.ts`, `approvals.ts`): this machine's agent. `start` without
 * `--foreground` runs the daemon in the background (pid in ~/.cmdop/cmdop.pid, log in ~/.cmdop/agent.log) and
 * returns once it is connecting; `stop` ends it, and the relay shows the machine offline at once.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import { CliError } from "../CliError.js"
import * as GateFiles from "@cmdop/agent/GateFiles"
import * as Duration from "../Duration.js"
import { checkServerList } from "../ServerList.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"
import { install, uninstall } from "./agentInstall.js"
import { approvalsCommands } from "./approvals.js"
import * as GateStatus from "./gateStatus.js"
import { permissionsCommand } from "./permissions.js"

const loadAgent = Effect.promise(() => import("../LocalAgent.js"))

/**
 * The credential flags given to `agent start`, passed on to the background daemon it spawns — the key through
 * the child's environment, never its argv (which any local user can read with `ps`).
 */
const passThrough = (own: GlobalOptions.Raw) => ({
  args: [
    ...Option.match(own.server, { onNone: () => [], onSome: (s) => ["--server", s] }),
    ...Option.match(own.workspace, { onNone: () => [], onSome: (w) => ["--workspace", w] })
  ],
  env: Option.match(own.apiKey, {
    onNone: () => ({}),
    onSome: (k): Record<string, string> => ({ CMDOP_API_KEY: Redacted.value(k) })
  })
})

const register = Command.make(
  "register",
  {
    ...GlobalOptions.options,
    name: Options.text("name").pipe(Options.withDescription("display name (default: the hostname)"), Options.optional),
    hostname: Options.text("hostname").pipe(
      Options.withDescription("hostname to register (default: this machine's); unique per workspace"),
      Options.optional
    )
  },
  ({ hostname, name, ...own }) =>
    Effect.gen(function* () {
      const g = GlobalOptions.merge(own, own)
      const runtime = yield* loadAgent
      const response = yield* runtime.register({
        overrides: GlobalOptions.overrides(g),
        hostname: Option.getOrUndefined(hostname),
        name: Option.getOrUndefined(name)
      })
      const m = response.machine!
      if (g.json)
        return yield* Output.json({
          machine_id: m.id,
          hostname: m.hostname,
          name: m.name,
          workspace: response.workspaceName
        })
      // Listings and machine queries show the display name: say it, and the hostname only where it differs.
      const shown = m.name === "" || m.name === m.hostname ? m.hostname : `${m.name} (hostname ${m.hostname})`
      yield* Output.line(`registered ${shown} as ${m.id} in workspace ${response.workspaceName}`)
      // A key given with -k was for this call only: a plain "agent start" would find none and retry forever.
      yield* Output.notice(
        g.apiKey === undefined
          ? 'start the agent with "cmdop agent start"'
          : 'start the agent with "cmdop agent start -k <key>": a key given with -k is not stored (to store it: "cmdop connect key set <key>")'
      )
    })
).pipe(Command.withDescription("create this machine's identity (~/.cmdop/agent.json) and register it with the relay"))

/**
 * The last line the daemon wrote to its log since `from` (its own error line, e.g. a corrupt agent.json), as
 * ": <line>", or "" when it wrote none: said with "did not start" so nobody has to open the log for the reason.
 */
const whyNotStarted = (logFile: string, from: number): string => {
  try {
    const fd = fs.openSync(logFile, "r")
    try {
      const length = Math.max(0, Math.min(fs.fstatSync(fd).size - from, 64 * 1024))
      const buffer = Buffer.alloc(length)
      fs.readSync(fd, buffer, 0, length, from)
      const last = buffer
        .toString("utf8")
        .trimEnd()
        .split("\n")
        .at(-1)
        ?.replace(/^cmdop: /, "")
        .trim()
      return last === undefined || last === "" ? "" : `: ${last}`
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    return ""
  }
}

/** How long `agent start` waits for a daemon that is dialing (no error yet) to come online before it returns. */
const ONLINE_GRACE_MS = 3_000

const startDaemonInBackground = (extra: {
  readonly args: ReadonlyArray<string>
  readonly env: Record<string, string>
}) =>
  Effect.gen(function* () {
    const paths = yield* CmdopPaths
    const runtime = yield* loadAgent
    const running = yield* runtime.runningPid
    if (Option.isSome(running))
      return yield* new CliError({
        message: `the agent is already running (pid ${running.value}); "cmdop agent stop" ends it`
      })
    const fsys = yield* FileSystem.FileSystem
    yield* fsys.makeDirectory(paths.root, { recursive: true, mode: 0o700 }).pipe(Effect.orDie)
    const log = fs.openSync(paths.agentLog, "a", 0o600)
    const logStart = fs.fstatSync(log).size
    const child = spawn(process.execPath, [process.argv[1]!, "agent", "start", "--foreground", ...extra.args], {
      detached: true,
      stdio: ["ignore", log, log],
      env: { ...process.env, ...extra.env }
    })
    fs.closeSync(log)
    child.unref()
    const pid = child.pid ?? 0
    // Wait until the daemon reports itself, or dies; then, while it is still dialing with nothing gone wrong yet,
    // a moment more for it to come online (a healthy start said "connecting … not online yet" every time).
    const started = yield* Clock.currentTimeMillis
    const deadline = started + 10_000
    for (;;) {
      const status = yield* runtime.readStatus
      if (Option.isSome(status) && status.value.pid === pid && status.value.state !== "STOPPED") {
        const dialing = status.value.state === "CONNECTING" && status.value.last_error === undefined
        if (!dialing || (yield* Clock.currentTimeMillis) > started + ONLINE_GRACE_MS) return status.value
      }
      if (!runtime.isAlive(pid) || (yield* Clock.currentTimeMillis) > deadline)
        return yield* new CliError({
          message: `the agent did not start${whyNotStarted(paths.agentLog, logStart)}; see ${paths.display(paths.agentLog)}`
        })
      yield* Effect.sleep("100 millis")
    }
  })

const start = Command.make(
  "start",
  {
    ...GlobalOptions.options,
    foreground: Options.boolean("foreground").pipe(Options.withDescription("run in this terminal; Ctrl-C stops it")),
    sessionIdle: Options.text("session-idle").pipe(
      Options.withDescription("close interactive sessions idle (no input, no output) this long: 30m, 12h, 48h"),
      Options.withDefault("12h")
    ),
    permissions: Options.text("permissions").pipe(
      Options.withDescription("the gate's policy file (default ~/.cmdop/permissions.yaml)"),
      Options.optional
    )
  },
  ({ foreground, permissions, sessionIdle, ...own }) =>
    Effect.gen(function* () {
      const g = GlobalOptions.merge(own, own)
      yield* checkServerList(g.server)
      const idleMs = yield* Duration.parse("--session-idle", sessionIdle)
      const policyFile = Option.map(permissions, (p) => nodePath.resolve(p))
      yield* GateFiles.checkAtStart(Option.getOrUndefined(policyFile)).pipe(
        Effect.mapError((e) => new CliError({ message: e.message }))
      )
      // In the foreground the daemon's own log says it (`PolicyStore`).
      const policyWarning = foreground ? undefined : yield* GateStatus.startWarning(Option.getOrUndefined(policyFile))
      if (foreground) {
        const runtime = yield* loadAgent
        return yield* runtime
          .runDaemon({
            overrides: GlobalOptions.overrides(g),
            pty: { idleTimeout: idleMs },
            ...Option.match(policyFile, { onNone: () => ({}), onSome: (p) => ({ permissions: p }) })
          })
          .pipe(
            Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))),
            Logger.withMinimumLogLevel(LogLevel.Info)
          )
      }
      const forwarded = passThrough(own)
      const status = yield* startDaemonInBackground({
        args: [
          "--session-idle",
          sessionIdle,
          ...Option.match(policyFile, { onNone: () => [], onSome: (p) => ["--permissions", p] }),
          ...forwarded.args
        ],
        env: forwarded.env
      })
      if (policyWarning !== undefined) yield* Output.notice(policyWarning)
      if (g.json) return yield* Output.json(status)
      yield* Output.line(
        `agent started (pid ${status.pid}), ${status.state.toLowerCase()} to ${status.relay ?? status.server}`
      )
      // The daemon registers itself when it connects, even after a failed `agent register`: a refusal (a name
      // clash, a bad key) is retried with backoff, so fixing it on the relay brings the machine online unrestarted.
      if (status.state !== "ONLINE")
        yield* Output.notice(
          `not online yet; it keeps retrying on its own — "cmdop agent status" says why${
            status.last_error ? ` (last: ${status.last_error})` : ""
          }`
        )
    })
).pipe(
  Command.withDescription(
    "run the agent daemon (in the background unless --foreground); --server a:50051,b:50051 names several nodes of one relay cluster, and the agent moves to another when its node dies"
  )
)

/** True when process `pid` is a `cmdop up` (its command line, where the system shows it). */
const runsUp = (pid: number): boolean => {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
    return argv.slice(2).find((a) => !a.startsWith("-")) === "up"
  } catch {
    return false
  }
}

const stop = Command.make("stop", GlobalOptions.options, (own) =>
  Effect.gen(function* () {
    const g = GlobalOptions.merge(own, own)
    const runtime = yield* loadAgent
    const running = yield* runtime.runningPid
    if (Option.isNone(running)) {
      if (g.json) return yield* Output.json({ stopped: false, running: false })
      return yield* Output.line("the agent is not running")
    }
    const pid = running.value
    // `cmdop up` runs the agent in its own process, next to the relay: stopping the agent stops both. Say so.
    const insideUp = runsUp(pid)
    if (insideUp && !g.json)
      yield* Output.notice(
        `cmdop: the agent runs inside "cmdop up" (pid ${pid}), which also runs the relay: stopping it stops both`
      )
    process.kill(pid, "SIGTERM")
    const deadline = (yield* Clock.currentTimeMillis) + 10_000
    while (runtime.isAlive(pid)) {
      if ((yield* Clock.currentTimeMillis) > deadline) {
        process.kill(pid, "SIGKILL")
        break
      }
      yield* Effect.sleep("50 millis")
    }
    if (g.json) return yield* Output.json({ stopped: true, pid, ...(insideUp ? { up: true } : {}) })
    yield* Output.line(
      insideUp ? `stopped "cmdop up" (pid ${pid}): its relay and its agent` : `agent stopped (pid ${pid})`
    )
  })
).pipe(Command.withDescription("stop the background agent daemon"))

const status = Command.make("status", GlobalOptions.options, (own) =>
  Effect.gen(function* () {
    const g = GlobalOptions.merge(own, own)
    const runtime = yield* loadAgent
    const current = yield* runtime.readStatus
    const view = Option.match(current, {
      onNone: () => ({ state: "STOPPED" as const }),
      onSome: (s) => s
    })
    const gate = yield* GateStatus.describe(view.state !== "STOPPED")
    if (g.json) return yield* Output.json({ ...view, gate })
    const lines: Array<[string, string]> = [["state", view.state]]
    if ("pid" in view && view.state !== "STOPPED") lines.push(["pid", String(view.pid)])
    if ("server" in view) {
      lines.push(["server", view.server])
      // The one node in use (a server setting may name several, and a cluster tells the agent of more).
      if (view.relay !== undefined && view.state !== "STOPPED")
        lines.push(["relay", view.state === "ONLINE" ? view.relay : `${view.relay} (connecting)`])
      lines.push(["workspace", view.workspace === "" ? "(from flag or env)" : view.workspace])
      lines.push(["machine", view.machine_id])
      lines.push(["since", view.since])
      if (view.last_error) lines.push(["last error", view.last_error])
    }
    lines.push(...GateStatus.lines(gate))
    yield* Output.line(Output.table(["", ""], lines).split("\n").slice(1).join("\n"))
  })
).pipe(Command.withDescription("ONLINE, CONNECTING or STOPPED, with the relay node and workspace in use"))

export const agentCommand = Command.make("agent").pipe(
  Command.withDescription("this machine's agent: register it, run it, stop it, check it"),
  Command.withSubcommands([register, start, stop, status, install, uninstall, permissionsCommand, ...approvalsCommands])
)
