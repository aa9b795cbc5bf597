/**
 * Ctrl-C during `cmdop connect exec vm -- sleep 100`, with real processes (a relay, an agent, the CLI as a child
 * process getting SIGINT, as a terminal sends it on Ctrl-C): the remote command gets SIGINT and the CLI exits with
 * its status; a second Ctrl-C gives up on a command that ignores it, and the command is killed on the machine. With
 * stdin flooded into a command that reads it, the signal reaches the command all the same; into one that never reads
 * it (`yes | cmdop connect exec vm -- sleep 100`), the signal cannot pass the stdin queued ahead of it on the call:
 * one Ctrl-C gives up on the command within a second, as a second one would.
 */
import { assert, describe, it } from "@effect/vitest"
import { eventuallySync } from "@cmdop/test-helpers/Eventually"
import { isRunning as alive } from "@cmdop/test-helpers/Liveness"
import * as Processes from "@cmdop/testkit/Processes"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Readable } from "node:stream"
import { live as world } from "./World.js"

/**
 * `cmdop connect exec …` as a child process: its output so far, Ctrl-C, and its exit code. Its stdin is `stdin`'s
 * output when given (a producer's pipe, as a shell's `|` makes), else none.
 */
const started = (
  w: { readonly client: string; readonly server: string },
  key: string,
  args: ReadonlyArray<string>,
  stdin?: Readable
) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, [Processes.binPath, "connect", "exec", ...args], {
        env: { PATH: process.env.PATH ?? "", HOME: w.client, CMDOP_API_KEY: key, CMDOP_SERVER: w.server },
        stdio: [stdin ?? "ignore", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      let code: number | null | undefined
      child.stdout.on("data", (d) => (stdout += d))
      child.stderr.on("data", (d) => (stderr += d))
      child.on("exit", (c, signal) => (code = c ?? (signal ? -1 : null)))
      return {
        child,
        out: () => stdout,
        err: () => stderr,
        code: () => code,
        ctrlC: () => void child.kill("SIGINT"),
        terminate: () => void child.kill("SIGTERM")
      }
    }),
    (p) => Effect.sync(() => void (p.code() === undefined && p.child.kill("SIGKILL")))
  )

/** `exec vm -- sleep 100` (through `sh`, which writes its pid to `pidFile` first), running: the CLI and that pid. */
const sleeping = (w: { readonly client: string; readonly server: string }, key: string, pidFile: string) =>
  Effect.gen(function* () {
    const sleeper = yield* started(w, key, ["vm", "--", "sh", "-c", `echo $$ > ${pidFile}; echo ready; exec sleep 100`])
    yield* eventuallySync("the remote command running", () => (sleeper.out().includes("ready") ? true : undefined))
    return { sleeper, pid: Number(fs.readFileSync(pidFile, "utf8").trim()) }
  })

describe("Ctrl-C during exec", () => {
  it.scopedLive("goes to the remote command as SIGINT; exit 130; twice gives up and kills it", () =>
    Effect.gen(function* () {
      const w = yield* world
      const key = yield* w.create("acme")
      yield* w.agent(key, "vm")

      // $ cmdop connect exec vm -- sleep 100      ^C
      const { pid, sleeper } = yield* sleeping(w, key, path.join(w.client, "sleep.pid"))
      assert.isTrue(alive(pid))
      sleeper.ctrlC()
      const code = yield* eventuallySync("the CLI's exit", () => sleeper.code() ?? undefined)
      assert.strictEqual(code, 130, sleeper.err())
      assert.strictEqual(sleeper.err(), "")
      assert.isFalse(alive(pid), "sleep ended on the machine")

      // The remote command sees SIGINT itself (a trap runs), and its own exit status comes back.
      const trapper = yield* started(w, key, [
        "vm",
        "--",
        "sh",
        "-c",
        'trap "echo got-INT; exit 7" INT; echo ready; while :; do sleep 1; done'
      ])
      yield* eventuallySync("the trap set", () => (trapper.out().includes("ready") ? true : undefined))
      trapper.ctrlC()
      assert.strictEqual(yield* eventuallySync("the CLI's exit", () => trapper.code() ?? undefined), 7)
      assert.strictEqual(trapper.out(), "ready\ngot-INT\n")

      // A command that ignores SIGINT: the second Ctrl-C gives up on it, and it is killed on the machine.
      const stubbornPid = path.join(w.client, "stubborn.pid")
      const stubborn = yield* started(w, key, [
        "vm",
        "--",
        "sh",
        "-c",
        `trap "" INT; echo $$ > ${stubbornPid}; echo ready; while :; do sleep 1; done`
      ])
      yield* eventuallySync("the stubborn command running", () => (stubborn.out().includes("ready") ? true : undefined))
      const spid = Number(fs.readFileSync(stubbornPid, "utf8").trim())
      stubborn.ctrlC()
      // Still running after the first press (the relay has delivered it once this exec is still going).
      yield* Effect.sleep("500 millis")
      assert.strictEqual(stubborn.code(), undefined)
      assert.isTrue(alive(spid))
      stubborn.ctrlC()
      assert.strictEqual(yield* eventuallySync("the CLI's exit", () => stubborn.code() ?? undefined), 130)
      assert.include(stubborn.err(), "cmdop: interrupted twice; the remote command is killed")
      yield* eventuallySync("the stubborn command gone", () => (alive(spid) ? undefined : true))
    })
  )

  it.scopedLive(
    "flooded stdin: a command that reads it gets SIGINT; behind stdin it never reads (sleep), one Ctrl-C kills it",
    () =>
      Effect.gen(function* () {
        const w = yield* world
        const key = yield* w.create("acme-flood")
        yield* w.agent(key, "vm")
        const yes = Effect.acquireRelease(
          Effect.sync(() => spawn("yes", [], { stdio: ["ignore", "pipe", "ignore"] })),
          (p) => Effect.sync(() => void p.kill("SIGKILL"))
        )
        // A command that reads its flooded stdin is reached by Ctrl-C itself, as without stdin: its trap runs.
        const reader = yield* started(
          w,
          key,
          ["vm", "--", "sh", "-c", 'trap "echo got-INT; exit 7" INT; echo ready; cat > /dev/null'],
          (yield* yes).stdout
        )
        yield* eventuallySync("the reader running", () => (reader.out().includes("ready") ? true : undefined))
        yield* Effect.sleep("1500 millis")
        reader.ctrlC()
        assert.strictEqual(yield* eventuallySync("the CLI's exit", () => reader.code() ?? undefined), 7, reader.err())
        assert.strictEqual(reader.out(), "ready\ngot-INT\n")
        assert.strictEqual(reader.err(), "")

        // $ yes | cmdop connect exec vm -- sleep 100      ^C
        const pidFile = path.join(w.client, "flooded.pid")
        const flooded = yield* started(
          w,
          key,
          ["vm", "--", "sh", "-c", `echo $$ > ${pidFile}; echo ready; exec sleep 100`],
          (yield* yes).stdout
        )
        yield* eventuallySync("the remote command running", () => (flooded.out().includes("ready") ? true : undefined))
        const pid = Number(fs.readFileSync(pidFile, "utf8").trim())
        // Every buffer between the pipe and sleep's stdin fills (the agent's window, the relay's, the CLI's) within
        // moments; the call carries no stdin any more.
        yield* Effect.sleep("1500 millis")
        assert.isTrue(alive(pid))
        assert.strictEqual(flooded.code(), undefined)
        const pressed = Date.now()
        flooded.ctrlC()
        const code = yield* eventuallySync("the CLI's exit", () => flooded.code() ?? undefined, {
          timeout: "5 seconds"
        })
        assert.strictEqual(code, 130, flooded.err())
        assert.isBelow(Date.now() - pressed, 3_000, "the CLI ended within 3 s of Ctrl-C")
        assert.include(
          flooded.err(),
          "cmdop: Ctrl-C could not reach the remote command behind the input it has not read"
        )
        yield* eventuallySync("sleep gone on the machine", () => (alive(pid) ? undefined : true), {
          timeout: "4 seconds"
        })
      })
  )

  it.scopedLive("SIGTERM (kill, a cancelled CI job): exit 143, never 0; the command is killed on the machine", () =>
    Effect.gen(function* () {
      const w = yield* world
      const key = yield* w.create("acme-term")
      yield* w.agent(key, "vm")
      // $ cmdop connect exec vm -- sleep 100 &  kill $!
      const { pid, sleeper } = yield* sleeping(w, key, path.join(w.client, "term.pid"))
      sleeper.terminate()
      assert.strictEqual(yield* eventuallySync("the CLI's exit", () => sleeper.code() ?? undefined), 143, sleeper.err())
      assert.include(sleeper.err(), "cmdop: terminated (SIGTERM); the remote command is killed")
      yield* eventuallySync("sleep gone on the machine", () => (alive(pid) ? undefined : true))
    })
  )

  it.scopedLive("a reader that goes away (exec … -- yes | head -c N): exit 141 quietly, the remote command ends", () =>
    Effect.gen(function* () {
      const w = yield* world
      const key = yield* w.create("acme-pipe")
      yield* w.agent(key, "vm")
      // $ cmdop connect exec vm -- sh -c 'echo $$ > pid; exec yes' | head -c 100000
      const pidFile = path.join(w.client, "yes.pid")
      const yes = yield* started(w, key, ["vm", "--", "sh", "-c", `echo $$ > ${pidFile}; exec yes`])
      let read = 0
      yes.child.stdout.removeAllListeners("data")
      yes.child.stdout.on("data", (d: Buffer) => {
        read += d.length
        if (read >= 100_000) yes.child.stdout.destroy()
      })
      const code = yield* eventuallySync("the CLI's exit", () => yes.code() ?? undefined)
      assert.strictEqual(code, 141, yes.err())
      assert.strictEqual(yes.err(), "", "no stack trace, no message: as ssh under SIGPIPE")
      const pid = Number(fs.readFileSync(pidFile, "utf8").trim())
      yield* eventuallySync("yes gone on the machine", () => (alive(pid) ? undefined : true))
    })
  )
})
