/**
 * Real child processes for end-to-end tests: the bundled CLI run once (`run`), or kept running (`daemon`) until
 * the scope closes, with its output captured and a readiness line awaited.
 */
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

export const binPath = fileURLToPath(new URL("../../../bin/cmdop", import.meta.url))

export interface Result {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const baseEnv = (home: string, env: Record<string, string>) => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: home,
  ...env
})

/** `cmdop <args>` to completion, with optional stdin text. */
export const run = (
  home: string,
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly stdin?: string; readonly timeoutMs?: number } = {}
) =>
  Effect.async<Result>((resume) => {
    const child = spawn(process.execPath, [binPath, ...args], {
      env: baseEnv(home, options.env ?? {}),
      stdio: ["pipe", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code: code ?? (signal ? 128 : 1), stdout, stderr }))
    })
    if (options.stdin !== undefined) child.stdin.end(options.stdin)
    else child.stdin.end()
    return Effect.sync(() => child.kill("SIGKILL"))
  })

export interface Daemon {
  readonly child: ChildProcess
  readonly output: () => string
  /** Sends a signal and waits for the process to exit. */
  readonly stop: (signal?: NodeJS.Signals) => Effect.Effect<void>
}

/** Starts `cmdop <args>` and waits until its output matches `ready`; killed when the scope closes. */
export const daemon = (
  home: string,
  args: ReadonlyArray<string>,
  ready: RegExp,
  options: { readonly env?: Record<string, string>; readonly timeoutMs?: number } = {}
) =>
  Effect.acquireRelease(
    Effect.async<Daemon, Error>((resume) => {
      const child = spawn(process.execPath, [binPath, ...args], {
        env: baseEnv(home, options.env ?? {}),
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      let done = false
      const timer = setTimeout(() => {
        if (done) return
        done = true
        child.kill("SIGKILL")
        resume(Effect.fail(new Error(`cmdop ${args.join(" ")} not ready in time:\n${output}`)))
      }, options.timeoutMs ?? 20_000)
      const onData = (d: Buffer) => {
        output += d.toString()
        if (!done && ready.test(output)) {
          done = true
          clearTimeout(timer)
          resume(Effect.succeed(daemonOf(child, () => output)))
        }
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", onData)
      child.on("exit", () => {
        if (done) return
        done = true
        clearTimeout(timer)
        resume(Effect.fail(new Error(`cmdop ${args.join(" ")} exited early:\n${output}`)))
      })
    }),
    // A graceful stop first: an agent then ends its shells itself, so none of them is still writing into the
    // temp HOME while it is removed. A process that ignores SIGTERM is killed after 5 s.
    (d) =>
      d.stop("SIGTERM").pipe(
        Effect.timeout("5 seconds"),
        Effect.catchAll(() => d.stop("SIGKILL"))
      )
  )

const daemonOf = (child: ChildProcess, output: () => string): Daemon => ({
  child,
  output,
  stop: (signal = "SIGTERM") =>
    Effect.async<void>((resume) => {
      if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
      child.once("exit", () => resume(Effect.void))
      child.kill(signal)
    })
})
