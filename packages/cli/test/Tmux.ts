/**
 * A real terminal for the CLI's attach tests: a tmux server of the test's own runs a command; the test types
 * with send-keys and reads the screen with capture-pane.
 */
import { assert } from "@effect/vitest"
import { eventuallySync } from "@cmdop/test-helpers/Eventually"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { execFileSync } from "node:child_process"

const tmux = (...args: ReadonlyArray<string>) => execFileSync("tmux", args, { encoding: "utf8" })

/** A tmux server of our own (-L), so tests never touch a user's tmux. */
export const terminal = (name: string, command: string, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const socket = `cmdop-test-${process.pid}-${name}`
      const exports = Object.entries(env)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(" ")
      execFileSync("tmux", [
        "-L",
        socket,
        "new-session",
        "-d",
        "-s",
        name,
        "-x",
        "100",
        "-y",
        "30",
        `env ${exports} ${command}; sleep 60`
      ])
      const send = (...keys: ReadonlyArray<string>) => tmux("-L", socket, "send-keys", "-t", name, ...keys)
      /** Types `text` as it is (no key names). */
      const type = (text: string) => tmux("-L", socket, "send-keys", "-l", "-t", name, text)
      const screen = () => tmux("-L", socket, "capture-pane", "-p", "-J", "-t", name, "-S", "-200")
      const resize = (cols: number, rows: number) =>
        tmux("-L", socket, "resize-window", "-t", name, "-x", String(cols), "-y", String(rows))
      return { socket, send, type, screen, resize }
    }),
    (t) => Effect.sync(() => void execFileSync("tmux", ["-L", t.socket, "kill-server"]))
  )

/** The environment of a CLI run in the test terminal: the client's HOME, the key and the relay. */
export const terminalEnv = (w: { readonly client: string; readonly server: string }, key: string) => ({
  HOME: w.client,
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  CMDOP_API_KEY: key,
  CMDOP_SERVER: w.server,
  TERM: "xterm-256color"
})

/** The screen once it matches `pattern`; fails the test with the screen after `timeoutMs`. */
export const waitFor = (screen: () => string, pattern: RegExp, what: string, timeoutMs = 15_000) =>
  eventuallySync(
    what,
    () => {
      const text = screen()
      return pattern.test(text) ? text : undefined
    },
    // A capture-pane is a few milliseconds of tmux: polling often costs little and ends each wait sooner.
    { timeout: Duration.millis(timeoutMs), interval: "30 millis" }
  ).pipe(
    Effect.catchTag("EventuallyTimeout", () =>
      Effect.sync(() => assert.fail(`timed out waiting for ${what}; screen:\n${screen()}`))
    )
  )
