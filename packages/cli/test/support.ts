/**
 * Runs the real command tree in-process with a captured console, a temp HOME and a given environment; and the
 * real bundled binary as a child process.
 */
import * as CapturedConsole from "@cmdop/test-helpers/CapturedConsole"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { main } from "../src/Cli.js"
import * as Layers from "../src/Layers.js"

export interface Result {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** `cmdop <args>` in-process. */
export const cli = (home: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const captured = CapturedConsole.make()
    const code = yield* main(["node", "cmdop", ...args]).pipe(
      Effect.provide(Layers.layerLocal(CmdopPaths.layerHome(home))),
      Effect.withConsole(captured.console),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ HOME: home, ...env }))))
    )
    return { code, stdout: captured.stdout(), stderr: captured.stderr() } satisfies Result
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
