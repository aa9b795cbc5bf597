/**
 * `cmdop agent install [--user|--system] [--dry-run]` and `cmdop agent uninstall`: a systemd unit that starts this
 * machine's agent at boot and restarts it when it fails (`SystemdUnit.ts`). Where systemd runs, `systemctl`
 * enables (or disables) it at once; elsewhere the CLI says so and prints the exact commands. The unit never holds
 * an API key: the agent reads the stored workspace, like `cmdop agent start` does.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as GateFiles from "@cmdop/agent/GateFiles"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import { CliError, ExitCode } from "../CliError.js"
import * as Duration from "../Duration.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"
import * as SystemdUnit from "../SystemdUnit.js"

const scopeOptions = {
  system: Options.boolean("system").pipe(
    Options.withDescription("a system unit (/etc/systemd/system; needs root): starts at boot before any login")
  ),
  user: Options.boolean("user").pipe(
    Options.withDescription("a user unit (~/.config/systemd/user), the default; at boot with loginctl enable-linger")
  ),
  dryRun: Options.boolean("dry-run").pipe(
    Options.withDescription("print the unit and where it would go; change nothing")
  )
}

/** How systemd is here: `systemctl` missing, present but systemd not running (a container), or running. */
type Systemd =
  | { readonly _tag: "NoSystemctl" }
  | { readonly _tag: "NotRunning" }
  | { readonly _tag: "Running"; readonly systemctl: string }

const systemd = Effect.gen(function* () {
  const path = yield* Config.string("PATH").pipe(Config.withDefault(""))
  const systemctl = path
    .split(":")
    .filter(Boolean)
    .map((dir) => nodePath.join(dir, "systemctl"))
    .find((file) => {
      try {
        fs.accessSync(file, fs.constants.X_OK)
        return true
      } catch {
        return false
      }
    })
  if (systemctl === undefined) return { _tag: "NoSystemctl" } as Systemd
  // systemd's own test that it is the init system (sd_booted).
  return (fs.existsSync("/run/systemd/system") ? { _tag: "Running", systemctl } : { _tag: "NotRunning" }) as Systemd
})

const why = (s: Systemd) =>
  s._tag === "NoSystemctl"
    ? "systemctl is not on this machine's PATH"
    : "systemd is not running here (no /run/systemd/system: a container, WSL without systemd, or another init)"

/** Runs `systemctl <args>`; the error is its own message, one line. */
const run = (systemctl: string, line: string) =>
  Effect.async<void, string>((resume) => {
    const args = line.split(" ").slice(1)
    execFile(systemctl, args, { timeout: 30_000 }, (error, _stdout, stderr) =>
      resume(error ? Effect.fail(stderr.trim().split("\n")[0] || error.message) : Effect.void)
    )
  })

/** Runs the `systemctl` lines in order; the first that fails stops, with its line and message. */
const runAll = (systemctl: string, lines: ReadonlyArray<string>) =>
  Effect.forEach(lines, (line) => Effect.mapError(run(systemctl, line), (message) => `${line}: ${message}`), {
    discard: true
  })

const scopeOf = (args: { readonly system: boolean; readonly user: boolean }) =>
  args.system && args.user
    ? Effect.fail(
        new CliError({ message: "--user and --system exclude each other: pick one", exitCode: ExitCode.usage })
      )
    : Effect.succeed<SystemdUnit.Scope>(args.system ? "system" : "user")

const unitPathFor = (scope: SystemdUnit.Scope) =>
  Effect.gen(function* () {
    const paths = yield* CmdopPaths
    const home = nodePath.dirname(paths.root)
    const xdg = yield* Config.string("XDG_CONFIG_HOME").pipe(Config.withDefault(""))
    return { home, path: SystemdUnit.unitPath(scope, { home, xdgConfigHome: xdg }) }
  })

/** Writes the unit (0644, atomically: a temp file renamed over it). */
const writeUnit = (path: string, text: string) =>
  Effect.try({
    try: () => {
      fs.mkdirSync(nodePath.dirname(path), { recursive: true })
      const tmp = `${path}.${process.pid}.tmp`
      fs.writeFileSync(tmp, text, { mode: 0o644 })
      fs.renameSync(tmp, path)
    },
    catch: (e) =>
      new CliError({
        message:
          (e as NodeJS.ErrnoException).code === "EACCES" || (e as NodeJS.ErrnoException).code === "EPERM"
            ? `cannot write ${path}: a system unit needs root (sudo cmdop agent install --system), or install a user unit: cmdop agent install --user`
            : `cannot write ${path}: ${(e as Error).message}`
      })
  })

export const install = Command.make(
  "install",
  {
    ...GlobalOptions.options,
    ...scopeOptions,
    sessionIdle: Options.text("session-idle").pipe(
      Options.withDescription("close interactive sessions idle this long (agent start --session-idle)"),
      Options.optional
    ),
    permissions: Options.text("permissions").pipe(
      Options.withDescription("the gate's policy file the agent runs with (default ~/.cmdop/permissions.yaml)"),
      Options.optional
    )
  },
  ({ dryRun, permissions, sessionIdle, system, user, ...own }) =>
    Effect.gen(function* () {
      const g = GlobalOptions.merge(own, own)
      const scope = yield* scopeOf({ system, user })
      if (Option.isSome(own.apiKey))
        return yield* new CliError({
          message:
            "agent install takes no --api-key: the unit file would hold it in clear; store it first (cmdop connect key set <key>), the agent reads it from there",
          exitCode: ExitCode.usage
        })
      if (Option.isSome(sessionIdle)) yield* Duration.parse("--session-idle", sessionIdle.value)
      // The unit's agent would refuse to start on a policy file that is missing or empty: said now, not at boot.
      if (Option.isSome(permissions))
        yield* GateFiles.checkAtStart(nodePath.resolve(permissions.value)).pipe(
          Effect.mapError((e) => new CliError({ message: e.message }))
        )
      const { home, path } = yield* unitPathFor(scope)
      const args = [
        ...Option.match(own.server, { onNone: () => [], onSome: (s) => ["--server", s] }),
        ...Option.match(own.workspace, { onNone: () => [], onSome: (w) => ["--workspace", w] }),
        ...Option.match(permissions, { onNone: () => [], onSome: (p) => ["--permissions", nodePath.resolve(p)] }),
        ...Option.match(sessionIdle, { onNone: () => [], onSome: (d) => ["--session-idle", d] })
      ]
      const unit = SystemdUnit.render({
        scope,
        node: process.execPath,
        cmdop: fs.realpathSync(process.argv[1] ?? "cmdop"),
        args,
        user: os.userInfo().username,
        home,
        // The relay's CA this shell trusts it with (a private CA, a self-signed relay): the service needs it too,
        // or it would retry forever on "self-signed certificate". By absolute path: the unit has no working dir.
        ...(process.env["CMDOP_TLS_CA"]
          ? { environment: [`CMDOP_TLS_CA=${nodePath.resolve(process.env["CMDOP_TLS_CA"])}`] }
          : {})
      })
      const commands = SystemdUnit.enableCommands(scope)
      if (dryRun) {
        if (g.json) return yield* Output.json({ unit_path: path, scope, written: false, unit, commands })
        yield* Output.notice(`would write ${path} (nothing changed: --dry-run):`)
        return yield* Output.line(unit.trimEnd())
      }
      yield* writeUnit(path, unit)
      const sd = yield* systemd
      const enabled = sd._tag === "Running" ? yield* Effect.either(runAll(sd.systemctl, commands)) : undefined
      if (g.json)
        return yield* Output.json({
          unit_path: path,
          scope,
          written: true,
          enabled: enabled?._tag === "Right",
          ...(enabled === undefined ? { systemd: why(sd) } : enabled._tag === "Left" ? { error: enabled.left } : {}),
          commands
        })
      yield* Output.line(`wrote ${path}`)
      if (enabled?._tag === "Right") {
        yield* Output.line(`enabled and started ${SystemdUnit.UNIT_NAME}: the agent now starts at boot`)
        if (scope === "user")
          yield* Output.notice(
            `a user unit starts at boot only with lingering on: loginctl enable-linger ${os.userInfo().username}`
          )
        return
      }
      yield* Output.notice(
        enabled === undefined
          ? `${why(sd)}, so nothing is enabled yet. Where systemd runs, enable it with:`
          : `systemctl failed (${enabled.left}); enable it yourself with:`
      )
      for (const line of commands) yield* Output.notice(`  ${line}`)
      if (scope === "user")
        yield* Output.notice(`  loginctl enable-linger ${os.userInfo().username}   # start at boot, before any login`)
    })
).pipe(
  Command.withDescription("a systemd unit that starts this machine's agent at boot (--user, the default, or --system)")
)

export const uninstall = Command.make(
  "uninstall",
  { ...GlobalOptions.options, ...scopeOptions },
  ({ dryRun, system, user, ...own }) =>
    Effect.gen(function* () {
      const g = GlobalOptions.merge(own, own)
      const scope = yield* scopeOf({ system, user })
      const { path } = yield* unitPathFor(scope)
      const commands = SystemdUnit.disableCommands(scope)
      if (!fs.existsSync(path)) {
        if (g.json) return yield* Output.json({ unit_path: path, scope, removed: false })
        return yield* Output.notice(
          `no ${scope} unit at ${path}; nothing to remove${scope === "user" ? " (a system unit? cmdop agent uninstall --system)" : ""}`
        )
      }
      if (dryRun) {
        if (g.json) return yield* Output.json({ unit_path: path, scope, removed: false, commands })
        return yield* Output.notice(
          `would disable ${SystemdUnit.UNIT_NAME} and remove ${path} (nothing changed: --dry-run)`
        )
      }
      const sd = yield* systemd
      // Disabled first, so systemd stops the agent while it still knows the unit; then the file goes.
      const disabled = sd._tag === "Running" ? yield* Effect.either(run(sd.systemctl, commands[0]!)) : undefined
      yield* Effect.try({
        try: () => fs.rmSync(path),
        catch: (e) => new CliError({ message: `cannot remove ${path}: ${(e as Error).message}` })
      })
      if (sd._tag === "Running") yield* Effect.ignore(run(sd.systemctl, commands[1]!))
      if (g.json)
        return yield* Output.json({
          unit_path: path,
          scope,
          removed: true,
          disabled: disabled?._tag === "Right",
          ...(disabled === undefined ? { systemd: why(sd) } : {})
        })
      yield* Output.line(`removed ${path}`)
      if (disabled?._tag === "Right") return yield* Output.line(`disabled and stopped ${SystemdUnit.UNIT_NAME}`)
      yield* Output.notice(
        disabled === undefined
          ? `${why(sd)}; where systemd runs the unit, also: ${commands.join(" && ")}`
          : `systemctl could not disable it (${disabled.left}); run: ${commands.join(" && ")}`
      )
    })
).pipe(Command.withDescription("remove the agent's systemd unit (disabling it first where systemd runs)"))
