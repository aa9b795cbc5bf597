/**
 * The agent daemon's own program, bundled (scripts/build.mjs) into `dist/agent.cjs`: what the launcher
 * (`boot.ts`) runs for `cmdop agent start --foreground` (also how the background start and the systemd unit run
 * the daemon) instead of the whole CLI. The daemon idles for days; the CLI's command tree, @effect/cli and every
 * other command's modules cost it memory for nothing (issue 11: one idle agent ≤ 50 MiB RSS).
 *
 * It behaves as `cmdop agent start --foreground` in the CLI (`commands/agent.ts`, `Cli.ts`, `bin.ts`): the same
 * checks of the flags, the same services (`Layers.live`'s paths, file system and OAuth session; `LocalAgent`'s
 * process runner and credential resolver), the same log format, the same failure line and exit code. Whatever it
 * does not take on — a command line `AgentStartArgv` does not accept, or a flag the checks refuse — goes to the
 * whole CLI, which reports it in its own words: the launcher hands over a function that runs it.
 */
// As in bin.ts, before grpc-js loads: grpc-js's own logger stays quiet, and Node's warnings are one line.
process.env["GRPC_VERBOSITY"] ??= "NONE"
process.removeAllListeners("warning")
process.on("warning", (warning) => {
  if (warning.name !== "DeprecationWarning") process.stderr.write(`cmdop: ${warning.name}: ${warning.message}\n`)
})

import * as AgentStartArgv from "./AgentStartArgv.js"

/** Set by the launcher: compiles and runs the whole CLI (`dist/cli.cjs`) on the same `process.argv`. */
const FULL_CLI = Symbol.for("cmdop.boot.fullCli")

/** Set by the launcher when the build primes the code cache: called once the daemon's modules are loaded. */
const PRIMED = Symbol.for("cmdop.boot.primed")

const fullCli = (): void => {
  const run = (globalThis as { [FULL_CLI]?: () => void })[FULL_CLI]
  if (run === undefined) throw new Error("cmdop: agent.cjs runs from the launcher (dist/cmdop.mjs)")
  run()
}

const args = process.argv.slice(2)
const parsed = AgentStartArgv.parse(args)

if (parsed === undefined) fullCli()
else
  void Promise.all([
    import("@effect/platform-node/NodeRuntime"),
    import("effect/Effect"),
    import("./agentDaemon.js")
  ]).then(([NodeRuntime, Effect, Daemon]) =>
    process.env["CMDOP_BOOT_PRIME"] === "1"
      ? (globalThis as { [PRIMED]?: () => void })[PRIMED]?.()
      : Effect.runPromise(Daemon.prepare(args, parsed)).then((prepared) => {
          if (prepared === undefined) return fullCli()
          prepared.pipe(
            Effect.flatMap((code) => Effect.sync(() => (process.exitCode = code))),
            NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
          )
        })
  )
