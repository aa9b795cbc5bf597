/**
 * `PosixSpawn`: a child started with `posix_spawn` is started as the agent's plain spawn starts one (its own session,
 * signals at their defaults and none blocked, only stdin/stdout/stderr open, argv and environment byte for byte, the
 * working directory), reports its exit as a `ChildProcess` does, is reaped (no zombie left), and whatever it cannot
 * start exactly is left to the caller (`undefined`) without a descriptor leaked.
 */
import * as PosixSpawn from "@cmdop/node/PosixSpawn"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const spawner = Effect.promise(() => PosixSpawn.load()).pipe(
  Effect.map((loaded) => {
    if (loaded === undefined) throw new Error("posix_spawn cannot be bound on this machine (Linux, glibc 2.29+)")
    return loaded
  })
)

interface Outcome {
  readonly stdout: string
  readonly stderr: string
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly events: Array<string>
}

/** Everything the child writes, how it ended, and the order of its `exit` and `close`. */
const outcome = (child: PosixSpawn.PosixChild | ChildProcess.ChildProcess, input?: string) =>
  Effect.async<Outcome>((resume) => {
    let stdout = ""
    let stderr = ""
    const events: Array<string> = []
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    child.once("exit", () => events.push("exit"))
    child.once("close", (code, signal) => {
      events.push("close")
      resume(Effect.succeed({ stdout, stderr, code, signal, events }))
    })
    child.stdin!.end(input)
  })

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", CMDOP_X: "a b\tc=d", EMPTY: "" }

const openFds = () => fs.readdirSync("/proc/self/fd").length

describe("PosixSpawn", () => {
  it.live("runs argv and the environment byte for byte, in the given directory", () =>
    Effect.gen(function* () {
      const s = yield* spawner
      const args = ["a b", "it's", "", "ünï", "two\nlines", "-n", "*"]
      const dir = fs.realpathSync(os.tmpdir())
      const child = s.spawn(
        "/bin/sh",
        ["sh", "-c", 'printf "%s\\0" "$@"; env -0 >&2; pwd >&2', "sh", ...args],
        env,
        dir
      )
      assert.isDefined(child)
      const result = yield* outcome(child!)
      assert.deepStrictEqual(result.stdout.split("\0").slice(0, -1), args)
      const [vars, cwd] = [result.stderr.split("\0"), result.stderr.split("\0").at(-1)!.trim()]
      assert.includeMembers(vars, ["CMDOP_X=a b\tc=d", "EMPTY="])
      assert.strictEqual(cwd, dir)
      assert.deepStrictEqual([result.code, result.signal, result.events], [0, null, ["exit", "close"]])
    })
  )

  it.live("the child leads its own session, with every signal at its default and none blocked", () =>
    Effect.gen(function* () {
      const s = yield* spawner
      // Node ignores SIGPIPE; a child spawned with that inherited would not die of a closed pipe.
      const child = s.spawn("/bin/cat", ["cat", "/proc/self/status", "/proc/self/stat"], env, "/")!
      const result = yield* outcome(child)
      const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)`, "m").exec(result.stdout)?.[1]
      assert.strictEqual(field("SigIgn"), "0000000000000000")
      assert.strictEqual(field("SigBlk"), "0000000000000000")
      const stat = result.stdout.split("\n").find((line) => line.startsWith(`${child.pid} (`))!
      const [, , pgrp, session] = stat.split(") ")[1]!.split(" ")
      assert.deepStrictEqual([Number(pgrp), Number(session)], [child.pid, child.pid])
    })
  )

  it.live("the child has the descriptors a plain spawn's child has: stdin, stdout and stderr on sockets", () =>
    Effect.gen(function* () {
      const s = yield* spawner
      // What Node's own spawn passes on besides 0–2 (this test runner's own inheritable pipe, for one) is passed on
      // alike: nothing this process opened close-on-exec (all it opens) reaches either child.
      const list = ["sh", "-c", 'for fd in /proc/$$/fd/*; do echo "${fd##*/} $(readlink $fd | cut -d: -f1)"; done']
      const direct = yield* outcome(s.spawn("/bin/sh", list, env, "/")!)
      const plain = yield* outcome(
        ChildProcess.spawn("/bin/sh", list.slice(1), { env, cwd: "/", detached: true, stdio: ["pipe", "pipe", "pipe"] })
      )
      // The shell's own descriptor for the directory it lists differs by number; the rest must match.
      const fds = (text: string) =>
        text
          .trim()
          .split("\n")
          .filter((line) => !line.includes("/proc"))
      assert.deepStrictEqual(fds(direct.stdout), fds(plain.stdout))
      assert.deepStrictEqual(fds(direct.stdout).slice(0, 3), ["0 socket", "1 socket", "2 socket"])
    })
  )

  it.live("stdin is fed and closed; exit codes and deaths by signal come as a ChildProcess reports them", () =>
    Effect.gen(function* () {
      const s = yield* spawner
      const cat = yield* outcome(s.spawn("/bin/cat", ["cat"], env, "/")!, "fed\n")
      assert.deepStrictEqual([cat.stdout, cat.code], ["fed\n", 0])
      const seven = yield* outcome(s.spawn("/bin/sh", ["sh", "-c", "exit 7"], env, "/")!)
      assert.deepStrictEqual([seven.code, seven.signal], [7, null])
      const killed = yield* outcome(s.spawn("/bin/sh", ["sh", "-c", "kill -TERM $$"], env, "/")!)
      assert.deepStrictEqual([killed.code, killed.signal], [null, "SIGTERM"])
    })
  )

  it.live("every child is reaped: none is left a zombie", () =>
    Effect.gen(function* () {
      const s = yield* spawner
      const pids: Array<number> = []
      for (let i = 0; i < 20; i++) {
        const child = s.spawn("/bin/true", ["true"], env, "/")!
        pids.push(child.pid)
        yield* outcome(child)
      }
      for (const pid of pids) assert.isFalse(fs.existsSync(`/proc/${pid}`), `pid ${pid} still there`)
    })
  )

  it.live("what it cannot start exactly is left to the caller, and no descriptor is left open", () =>
    Effect.gen(function* () {
      const s = yield* spawner
      const before = openFds()
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "posix-spawn-"))
      const notExecutable = path.join(dir, "plain.txt")
      fs.writeFileSync(notExecutable, "echo hi\n", { mode: 0o644 })
      assert.isUndefined(s.spawn("/bin/echo", ["echo", "a\0b"], env, "/"))
      assert.isUndefined(s.spawn("/bin/echo", ["echo"], { ...env, BAD: "x\0y" }, "/"))
      assert.isUndefined(s.spawn(path.join(dir, "missing"), ["missing"], env, "/"))
      assert.isUndefined(s.spawn(notExecutable, ["plain.txt"], env, "/"))
      assert.isUndefined(s.spawn("/bin/true", ["true"], env, path.join(dir, "no-such-dir")))
      assert.strictEqual(openFds(), before)
      fs.rmSync(dir, { recursive: true })
    })
  )
})
