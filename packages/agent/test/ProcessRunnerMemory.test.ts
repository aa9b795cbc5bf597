/**
 * What only the in-memory twin has (the shared behaviour is in `ProcessRunnerContract.ts`): time is the Effect
 * `Clock`, so sleeps and timeouts run under the `TestClock`; its shell subset and the clear refusal of the rest; the
 * programs of your own; pids no real process has; and that it never falls back to a real program.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ProcessRunnerMemory from "@cmdop/agent/ProcessRunnerMemory"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import type { ExecSpec } from "@cmdop/agent/ProcessRunner"
import { ProcessRunner } from "@cmdop/agent/ProcessRunner"
import { finish, spec } from "./ProcessRunnerContract.js"

const run = (argv: ReadonlyArray<string>, extra?: Partial<ExecSpec>) =>
  Effect.flatMap(ProcessRunner, (runner) => Effect.flatMap(runner.spawn(spec(argv, extra)), finish)).pipe(
    Effect.scoped,
    Effect.provide(ProcessRunnerMemory.layer)
  )

describe("ProcessRunnerMemory", () => {
  describe("time is the Effect Clock", () => {
    it.scoped("sleep 30 ends when the TestClock has moved 30 seconds, and reports that duration", () =>
      Effect.gen(function* () {
        const fiber = yield* Effect.fork(run(["sleep", "29.5", "0.5"]))
        yield* TestClock.adjust("29 seconds")
        assert.isNull(fiber.unsafePoll(), "sleep ended early")
        yield* TestClock.adjust("1 second")
        const result = yield* Fiber.join(fiber)
        assert.deepStrictEqual([result.exit.exitCode, result.exit.durationMs], [0, 30_000])
      })
    )

    it.scoped("a timeout fires on the TestClock: 124 after exactly the limit", () =>
      Effect.gen(function* () {
        const fiber = yield* Effect.fork(run(["sleep", "1h"], { timeoutMs: 5_000 }))
        yield* TestClock.adjust("5 seconds")
        const result = yield* Fiber.join(fiber)
        assert.deepStrictEqual(
          [result.exit.exitCode, result.exit.timedOut, result.exit.signal, result.exit.durationMs],
          [124, true, "TERM", 5_000]
        )
      })
    )
  })

  describe("the shell subset", () => {
    it.effect("variables, $$, $?, quotes, escapes, assignments, comments", () =>
      Effect.gen(function* () {
        const result = yield* run([
          "sh",
          "-c",
          `X=one; export Y=two; echo "$X" '$X' \${Y} a\\ b; false; echo $?; Z=three sh -c 'echo $Z'; echo [$UNSET] # gone`
        ])
        assert.strictEqual(result.stdout, "one $X two a b\n1\nthree\n[]\n")
        const pid = yield* run(["sh", "-c", "echo $$"])
        assert.isAbove(Number(pid.stdout), 4_194_304, "a pid a real process could have")
      })
    )

    it.effect("kill: its own pid only; 0 and WINCH do not end it; a bad signal is an error", () =>
      Effect.gen(function* () {
        const result = yield* run(["sh", "-c", "kill -0 $$; kill -WINCH $$; kill 1; kill -NOPE $$; echo alive $?"])
        assert.strictEqual(result.stdout, "alive 1\n")
        assert.strictEqual(result.stderr, "sh: kill: (1) - No such process\nsh: kill: NOPE: invalid signal\n")
        const nine = yield* run(["sh", "-c", "kill -9 $$"])
        assert.deepStrictEqual([nine.exit.exitCode, nine.exit.signal], [137, "KILL"])
      })
    )

    it.effect("what it does not speak is refused with exit 2, naming it, before anything runs", () =>
      Effect.gen(function* () {
        for (const [script, named] of [
          ["echo first; echo a | tr a b", "'|'"],
          ["sleep 1 &", "'&'"],
          ["echo $(date)", "'$('"],
          ["(echo sub)", "'('"],
          ["echo x > file", "'>'"],
          ["echo 'open", "an unterminated ' quote"]
        ] as const) {
          const result = yield* run(["sh", "-c", script])
          assert.strictEqual(result.stdout, "", script)
          assert.strictEqual(result.exit.exitCode, 2, script)
          assert.include(result.stderr, `sh: ${named} is not supported in memory (supported: `, script)
        }
        const file = yield* run(["sh", "script.sh"])
        assert.deepStrictEqual(
          [file.exit.exitCode, file.stderr],
          [127, "sh: script.sh: script files are not supported in memory\n"]
        )
        const arithmetic = yield* run(["sh", "-c", "echo $((1 / 0)); echo after"])
        assert.deepStrictEqual([arithmetic.stdout, arithmetic.exit.exitCode], ["", 2])
        assert.include(arithmetic.stderr, "sh: arithmetic: division by zero")
      })
    )

    it.effect("a command it does not know is not found, in the shell and on its own: no real program runs", () =>
      Effect.gen(function* () {
        const inShell = yield* run(["sh", "-c", "ls /; echo $?"])
        assert.deepStrictEqual([inShell.stdout, inShell.stderr], ["127\n", "sh: ls: not found\n"])
        const alone = yield* run(["/bin/ls"])
        assert.deepStrictEqual([alone.exit.exitCode, alone.exit.error], [127, "command not found: /bin/ls"])
        const file = yield* run(["cat", "/etc/shadow"])
        assert.strictEqual(file.exit.exitCode, 1)
        assert.strictEqual(file.stderr, "cat: /etc/shadow: No such file or directory\n")
      })
    )

    it.effect("bad operands say what is wrong", () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(
          [(yield* run(["sleep", "soon"])).stderr, (yield* run(["printf", "%d", "x"])).stderr],
          ["sleep: invalid time interval 'soon'\n", "printf: 'x': expected a numeric value\n"]
        )
        assert.include((yield* run(["printf", "%q", "x"])).stderr, "printf: %q: conversion not supported in memory")
        assert.strictEqual((yield* run(["sh", "-c", "exit 300"])).exit.exitCode, 44)
      })
    )
  })

  it.effect("files of your own, read by cat, grep and sort, relative to the working directory", () =>
    Effect.gen(function* () {
      const runner = yield* ProcessRunnerMemory.make({ files: { "/srv/list": "b 2\na 3\nc 1\n" } })
      const go = (argv: ReadonlyArray<string>, cwd?: string) =>
        Effect.scoped(Effect.flatMap(runner.spawn(spec(argv, cwd === undefined ? {} : { cwd })), finish))
      assert.strictEqual((yield* go(["sort", "-k", "2", "-r", "list"], "/srv")).stdout, "a 3\nb 2\nc 1\n")
      assert.strictEqual((yield* go(["grep", "-c", "[ab]", "/srv/list"])).stdout, "2\n")
      assert.strictEqual((yield* go(["grep", "-q", "root", "/etc/passwd"])).exit.exitCode, 2)
    })
  )

  it.effect("programs of your own, with the environment, stdin and exit status they are given", () =>
    Effect.gen(function* () {
      const runner = yield* ProcessRunnerMemory.make({
        env: { GREETING: "hello" },
        home: "/srv",
        programs: {
          greet: (io) =>
            Effect.as(io.stdout(`${io.env.GREETING} ${io.args.join(" ")} from ${io.cwd} as ${io.name}\n`), 5)
        }
      })
      const result = yield* Effect.scoped(Effect.flatMap(runner.spawn(spec(["/opt/bin/greet", "world"])), finish))
      assert.deepStrictEqual([result.stdout, result.exit.exitCode], ["hello world from /srv as greet\n", 5])
      const shell = yield* Effect.scoped(
        Effect.flatMap(runner.spawn(spec(["greet", "again;", "echo", "$?"], { shell: true })), finish)
      )
      assert.strictEqual(shell.stdout, "hello again from /srv as greet\n5\n")
    })
  )
})
