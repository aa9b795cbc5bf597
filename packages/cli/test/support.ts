/**
 * Runs the real command tree in-process with a captured console, a temp HOME and a given environment; and the
 * real bundled binary as a child process.
 */
import * as CapturedConsole from "@cmdop/test-helpers/CapturedConsole"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { main } from "../src/Cli.js"
import * as Layers from "../src/Layers.js"
import * as Stdio from "../src/Stdio.js"

export interface Result {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * `cmdop <args>` in-process against `services`, with a captured console and stdio, `stdin` piped when given, and
 * exactly `env` as the environment.
 */
export const runMain = <E, R>(
  args: ReadonlyArray<string>,
  options: {
    readonly env: Record<string, string>
    readonly stdin?: string | undefined
    readonly services: Layer.Layer<Layers.Services, E, R>
  }
) =>
  Effect.gen(function* () {
    const captured = CapturedConsole.make()
    const stdio = Stdio.layerMemory({
      stdin: options.stdin,
      stdout: captured.writeStdout,
      stderr: captured.writeStderr
    })
    const code = yield* main(["node", "cmdop", ...args]).pipe(
      Effect.provide(stdio),
      Effect.provide(options.services),
      Effect.withConsole(captured.console),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(options.env))))
    )
    return { code, stdout: captured.stdout(), stderr: captured.stderr() } satisfies Result
  })

/** `cmdop <args>` in-process on the real (file-backed) services with HOME at `home`. */
export const cli = (home: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  runMain(args, {
    env: { HOME: home, ...env },
    services: Layers.layerLive(CmdopPaths.layerHome(home))
  })

export const binPath = fileURLToPath(new URL("../../../bin/cmdop", import.meta.url))

/** `bin/cmdop <args>` as a real process with HOME pointed at `home`. */
export const spawnCli = (home: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.async<Result>((resume) => {
    const child = execFile(
      process.execPath,
      [binPath, ...args],
      { env: { PATH: process.env.PATH ?? "", HOME: home, ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
    )
    return Effect.sync(() => child.kill())
  })
