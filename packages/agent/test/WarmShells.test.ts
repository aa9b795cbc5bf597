/**
 * Warm shells: a command taken by one runs exactly as a plain spawn would run it (argv byte for byte, the same
 * environment, its own process group, the shell's pid); whatever a shell cannot start exactly goes the plain way;
 * the next shell is spawned a moment after a command ends, or once nothing started or ended for a while; a shell
 * left waiting exits when the pool closes.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { withoutAgentSecrets } from "../src/internal/sessionEnv.js"
import * as WarmShells from "../src/internal/warmShells.js"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import { isRunning, tempDir, until } from "./helpers.js"
import { finish, spec, within } from "./ProcessRunnerContract.js"

const home = os.homedir()

/** A pool over the agent's environment, closed with the scope. */
const pool = Effect.acquireRelease(
  Effect.sync(() => {
    const shells = WarmShells.make(() => withoutAgentSecrets(process.env), home)
    if (shells === undefined) throw new Error("/bin/sh here is not dash: no warm shells")
    return shells
  }),
  (shells) => Effect.sync(() => shells.close())
)

/** Everything a child writes to stdout, and how it ended (`close`: exited, and its pipes are closed). */
const outcome = (child: ChildProcess.ChildProcess) =>
  Effect.async<{ stdout: string; code: number | null; signal: NodeJS.Signals | null }>((resume) => {
    let stdout = ""
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
    child.once("close", (code, signal) => resume(Effect.succeed({ stdout, code, signal })))
  })

/** `spec` taken by the shell ready in `shells`, once there is one. */
const takeWhenReady = (shells: WarmShells.WarmShells, spec: Parameters<WarmShells.WarmShells["take"]>[0]) =>
  Effect.map(
    until("a warm shell ready", () => shells.isReady()),
    () => shells.take(spec, home)!
  )

const sorted = (text: string) => text.split("\0").sort()

describe("WarmShells", () => {
  it.scopedLive("runs argv byte for byte, as the shell's own pid, leading its own process group", () =>
    Effect.gen(function* () {
      const shells = yield* pool
      const args = ["a b", "it's", 'say "hi"', "$HOME `id` $(id) \\n", "two\nlines", "ünï", "", "-n", "*"]
      const child = shells.take({ argv: ["printf", "%s\\0", ...args], shell: false }, home)
      assert.isDefined(child)
      const pid = child!.pid!
      assert.strictEqual(fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[2], String(pid))
      const result = yield* outcome(child!)
      assert.deepStrictEqual(result.stdout.split("\0").slice(0, -1), args)
      assert.deepStrictEqual([result.code, result.signal], [0, null])
    })
  )

  it.scopedLive("gives the command the environment a plain spawn gives it, extra variables included", () =>
    Effect.gen(function* () {
      const shells = yield* pool
      const extra = { CMDOP_TEST_QUOTED: "it's\na $value", PATH: `/usr/bin:/bin:${process.env.PATH ?? ""}` }
      const warm = yield* outcome(yield* takeWhenReady(shells, { argv: ["env", "-0"], shell: false, env: extra }))
      const plain = ChildProcess.spawnSync("env", ["-0"], {
        cwd: home,
        env: { ...withoutAgentSecrets(process.env), ...extra }
      })
      assert.deepStrictEqual(sorted(warm.stdout), sorted(plain.stdout.toString()))
    })
  )

  it.scopedLive("shell: true runs argv joined under $SHELL -c, as a plain spawn does", () =>
    Effect.gen(function* () {
      const shells = yield* pool
      const child = shells.take(
        { argv: ["echo", "$CMDOP_X", "|", "tr", "a", "b"], shell: true, env: { CMDOP_X: "aa" } },
        home
      )
      assert.strictEqual((yield* outcome(child!)).stdout, "bb\n")
    })
  )

  it.scopedLive("goes the plain way for what the shell would not start exactly as spawn does", () =>
    Effect.gen(function* () {
      const shells = yield* pool
      const dir = yield* tempDir("cmdop-warm-")
      const notExecutable = path.join(dir, "script")
      fs.writeFileSync(notExecutable, "echo hi\n", { mode: 0o644 })
      const noInterpreter = path.join(dir, "orphan")
      fs.writeFileSync(noInterpreter, "#!/nonexistent/interpreter\necho hi\n", { mode: 0o755 })
      const refused = [
        shells.take({ argv: ["true"], shell: false }, dir),
        shells.take({ argv: ["true"], shell: false, env: { "A-B": "x" } }, home),
        shells.take({ argv: ["cmdop-no-such-command"], shell: false }, home),
        shells.take({ argv: [notExecutable], shell: false }, home),
        shells.take({ argv: [noInterpreter], shell: false }, home),
        shells.take({ argv: ["-true"], shell: false }, home),
        shells.take({ argv: ["printf", "%s", "a\0b"], shell: false }, home),
        shells.take({ argv: ["true"], shell: false, env: { CMDOP_X: "a\0b" } }, home),
        shells.take({ argv: [], shell: false }, home),
        shells.take({ argv: ["true"], shell: false, env: { PATH: dir } }, home),
        shells.take({ argv: ["true"], shell: false, env: { BIG: "x".repeat(9000) } }, home)
      ]
      assert.deepStrictEqual(
        refused.map((c) => c === undefined),
        refused.map(() => true)
      )
      // The shell refused for all of those is still ready for a command it can run.
      const child = shells.take({ argv: ["true"], shell: false }, home)
      assert.isDefined(child)
      // Taken: none ready until it is refilled.
      assert.isUndefined(shells.take({ argv: ["true"], shell: false }, home))
      yield* outcome(child!)
    })
  )

  it.scopedLive("a word with a NUL byte fails as a plain spawn fails it (126, why), not as a shorter word", () =>
    Effect.gen(function* () {
      const runner = yield* ProcessRunner.makeWarm({ warmShellQuiet: "1 millis" })
      const p = yield* runner.spawn(spec(["printf", "%s", "a\0b"]))
      const result = yield* within(finish(p))
      assert.deepStrictEqual([result.stdout, result.exit.exitCode], ["", 126])
      assert.include(result.exit.error, "cannot run printf")
    })
  )

  it.scopedLive("runs a #! script whose interpreter is there", () =>
    Effect.gen(function* () {
      const shells = yield* pool
      const dir = yield* tempDir("cmdop-warm-")
      const script = path.join(dir, "hello")
      fs.writeFileSync(script, '#!/bin/sh -e\necho hello "$1"\n', { mode: 0o755 })
      const child = yield* takeWhenReady(shells, { argv: [script, "there"], shell: false })
      assert.strictEqual((yield* outcome(child)).stdout, "hello there\n")
    })
  )

  it.scopedLive("a shell is ready again once the command that took the last one has ended", () =>
    Effect.gen(function* () {
      const shells = yield* pool
      for (let i = 0; i < 3; i++) {
        const child = yield* takeWhenReady(shells, { argv: ["true"], shell: false })
        assert.deepStrictEqual((yield* outcome(child)).code, 0)
      }
    })
  )

  it.scopedLive("while a long command runs, the next shell is spawned once nothing started or ended for a while", () =>
    Effect.gen(function* () {
      const shells = yield* Effect.acquireRelease(
        Effect.sync(() => WarmShells.make(() => withoutAgentSecrets(process.env), home, 300)!),
        (shells) => Effect.sync(() => shells.close())
      )
      const child = yield* takeWhenReady(shells, { argv: ["sleep", "3"], shell: false })
      assert.isFalse(shells.isReady())
      yield* until("a shell ready once quiet", () => shells.isReady(), "2 seconds")
      assert.isTrue(isRunning(child.pid!))
      child.kill("SIGKILL")
    })
  )

  it.scopedLive(
    "in a loop of commands, the next shell is spawned a moment after one ends, not after a quiet time",
    () =>
      Effect.gen(function* () {
        // A quiet time far longer than the loop's gaps: a shell ready between the calls can only be one spawned early.
        const shells = yield* Effect.acquireRelease(
          Effect.sync(() => WarmShells.make(() => withoutAgentSecrets(process.env), home, 5_000)!),
          (shells) => Effect.sync(() => shells.close())
        )
        for (let i = 0; i < 5; i++) {
          yield* until("a shell ready well before the quiet time", () => shells.isReady(), "2 seconds")
          const child = shells.take({ argv: ["true"], shell: false }, home)
          assert.isDefined(child)
          assert.deepStrictEqual((yield* outcome(child!)).code, 0)
          shells.ended()
          // Not at once: its output and Exit go first (the fork waits for this turn of the event loop to end).
          assert.isFalse(shells.isReady())
        }
      })
  )

  it.scopedLive("the shell left waiting exits when the pool closes", () =>
    Effect.gen(function* () {
      const shells = WarmShells.make(() => withoutAgentSecrets(process.env), home)!
      const waiting = ChildProcess.execFileSync("pgrep", ["-P", String(process.pid), "-f", "read -r l <&3"])
        .toString()
        .trim()
        .split("\n")
        .map(Number)
      assert.isAbove(waiting.length, 0)
      shells.close()
      yield* until(`waiting shells ${waiting.join(", ")} to exit`, () => !waiting.some(isRunning))
    })
  )
})
