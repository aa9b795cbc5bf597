/**
 * The `ProcessRunner` contract: what an exec session may rely on, whichever runner runs it. One function taking a
 * layer, run against the live runner (real processes) and the in-memory twin (`ProcessRunnerMemory`), on the real
 * clock. Only commands both know are used: echo, printf, true, false, cat, wc, sleep, env, pwd, yes, `sh -c`.
 */
import { assert, describe, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as crypto from "node:crypto"
import type { ExecSpec, OutputChunk, RunningProcess } from "@cmdop/agent/ProcessRunner"
import { ProcessRunner } from "@cmdop/agent/ProcessRunner"

export const spec = (argv: ReadonlyArray<string>, extra: Partial<ExecSpec> = {}): ExecSpec => ({
  argv,
  shell: false,
  timeoutMs: 0,
  stdin: false,
  ...extra
})

export const spawn = (s: ExecSpec) => Effect.flatMap(ProcessRunner, (runner) => runner.spawn(s))

export const text = (chunks: Iterable<OutputChunk>, pipe: OutputChunk["pipe"]) =>
  Buffer.concat([...chunks].filter((c) => c.pipe === pipe).map((c) => c.data)).toString("utf8")

/** Drains `output`, then awaits `exit`, the order the session layer uses. */
export const finish = (p: RunningProcess) =>
  Effect.gen(function* () {
    const chunks = yield* Stream.runCollect(p.output)
    const exit = yield* p.exit
    return { stdout: text(chunks, "stdout"), stderr: text(chunks, "stderr"), exit }
  })

/** Fails the test instead of hanging it; generous, as a loaded machine needs. */
export const within = <A, E, R>(self: Effect.Effect<A, E, R>, millis = 10_000) =>
  Effect.timeoutFail(self, { duration: millis, onTimeout: () => new Error(`timed out after ${millis} ms`) })

const run = (argv: ReadonlyArray<string>, extra?: Partial<ExecSpec>) =>
  within(Effect.flatMap(spawn(spec(argv, extra)), finish))

/** Deterministic bytes where every 4-byte word holds its own index, so loss or reordering changes the hash. */
export const pattern = (size: number) => {
  const buffer = Buffer.alloc(size)
  for (let i = 0; i + 4 <= size; i += 4) buffer.writeUInt32LE(i / 4, i)
  return buffer
}

export const sha256 = (data: Uint8Array) => crypto.createHash("sha256").update(data).digest("hex")

/** Writes `data` in 64 KiB pieces, then closes stdin. */
export const feed = (p: RunningProcess, data: Uint8Array) =>
  Effect.gen(function* () {
    for (let offset = 0; offset < data.length; offset += 65_536) yield* p.write(data.subarray(offset, offset + 65_536))
    yield* p.closeStdin
  })

/** Whether `exit` is still pending after a short while (a command that must not have ended). */
const stillRunning = (p: RunningProcess) => Effect.map(Effect.timeoutOption(p.exit, "200 millis"), Option.isNone)

export interface Subject {
  /** The directory a command starts in when the spec names none. */
  readonly home: string
}

/** Runs the contract against `runner` (real time: the layer excludes the test services). */
export const contract = (name: string, runner: Layer.Layer<ProcessRunner>, subject: Subject) =>
  layer(runner, { excludeTestServices: true })(`ProcessRunner contract: ${name}`, (it) => {
    describe("how a command ends", () => {
      it.scoped("passes the exit status through", () =>
        Effect.gen(function* () {
          const three = yield* run(["sh", "-c", "exit 3"])
          assert.deepStrictEqual({ ...three.exit, durationMs: 0 }, { exitCode: 3, timedOut: false, durationMs: 0 })
          assert.strictEqual((yield* run(["true"])).exit.exitCode, 0)
          assert.strictEqual((yield* run(["false"])).exit.exitCode, 1)
          assert.isAtLeast(three.exit.durationMs, 0)
        })
      )

      it.scoped("a missing command: pid 0, no output, 127 and why", () =>
        Effect.gen(function* () {
          const missing = yield* spawn(spec(["cmdop-no-such-command"]))
          assert.strictEqual(missing.pid, 0)
          const result = yield* within(finish(missing))
          assert.deepStrictEqual(
            [result.stdout, result.stderr, result.exit.exitCode, result.exit.error, result.exit.timedOut],
            ["", "", 127, "command not found: cmdop-no-such-command", false]
          )
          const empty = yield* run([])
          assert.deepStrictEqual([empty.exit.exitCode, empty.exit.error], [127, "command not found: (empty command)"])
        })
      )

      it.scoped("the shell ends itself with a signal: 128 + n and its name", () =>
        Effect.gen(function* () {
          const result = yield* run(["sh", "-c", "echo before; kill -TERM $$; echo after"])
          assert.deepStrictEqual(
            [result.stdout, result.exit.exitCode, result.exit.signal, result.exit.timedOut],
            ["before\n", 143, "TERM", false]
          )
        })
      )
    })

    describe("output", () => {
      it.scoped("keeps stderr apart from stdout, in the shell and with its redirections", () =>
        Effect.gen(function* () {
          const result = yield* run(["sh", "-c", "echo out; echo err 1>&2; echo also >&2; echo gone >/dev/null"])
          assert.deepStrictEqual([result.stdout, result.stderr, result.exit.exitCode], ["out\n", "err\nalso\n", 0])
          const merged = yield* run(["sh", "-c", "echo one 2>&1; false || echo two && echo three; exit 9"])
          assert.deepStrictEqual([merged.stdout, merged.exit.exitCode], ["one\ntwo\nthree\n", 9])
        })
      )

      it.scoped("echo, printf and env print what coreutils prints", () =>
        Effect.gen(function* () {
          assert.strictEqual((yield* run(["echo", "a", "b c"])).stdout, "a b c\n")
          assert.strictEqual((yield* run(["echo", "-n", "x"])).stdout, "x")
          assert.strictEqual((yield* run(["printf", "a b"])).stdout, "a b")
          assert.strictEqual((yield* run(["printf", "%s=%d\\n", "x", "3", "y", "42"])).stdout, "x=3\ny=42\n")
          const env = yield* run(["env"], { env: { CMDOP_CONTRACT: "yes it is" } })
          assert.include(env.stdout.split("\n"), "CMDOP_CONTRACT=yes it is")
          const via = yield* run(["env", "CMDOP_A=1", "sh", "-c", 'echo "$CMDOP_A"'])
          assert.strictEqual(via.stdout, "1\n")
        })
      )

      it.scoped("grep and sort read files and stdin; sh takes positional arguments, ${X:-d} and $(( ))", () =>
        Effect.gen(function* () {
          const grep = yield* run(["grep", "-q", "root", "/etc/passwd"])
          assert.deepStrictEqual([grep.stdout, grep.exit.exitCode], ["", 0])
          assert.strictEqual((yield* run(["grep", "-q", "cmdop-nobody-here", "/etc/passwd"])).exit.exitCode, 1)
          const sorted = yield* within(
            Effect.gen(function* () {
              const p = yield* spawn(spec(["sort", "-k", "2"], { stdin: true }))
              yield* feed(p, Buffer.from("x 2\ny 1\n"))
              return yield* finish(p)
            })
          )
          assert.strictEqual(sorted.stdout, "y 1\nx 2\n")
          const args = yield* run(["sh", "-c", 'echo "$@"; echo $# $0 $2', "name", "--help", "two words"])
          assert.strictEqual(args.stdout, "--help two words\n2 name two words\n")
          const expanded = yield* run(["sh", "-c", "echo ${CMDOP_UNSET:-fallback} $((2 * (3 + 4) - 1))"])
          assert.strictEqual(expanded.stdout, "fallback 13\n")
        })
      )

      it.scoped("a login shell reads its script from stdin, and exec replaces the shell", () =>
        Effect.gen(function* () {
          const p = yield* spawn(spec(['exec "${SHELL:-/bin/sh}" -l'], { shell: true, stdin: true }))
          yield* feed(p, Buffer.from("echo piped-$((20+1)); exit 3\n"))
          const result = yield* within(finish(p))
          assert.deepStrictEqual([result.stdout, result.exit.exitCode], ["piped-21\n", 3])
          const replaced = yield* run(["sh", "-c", "exec sh -c 'exit 5'; echo never"])
          assert.deepStrictEqual([replaced.stdout, replaced.exit.exitCode], ["", 5])
        })
      )

      it.scoped("runs through the shell with the env merged in, in the given directory or the home", () =>
        Effect.gen(function* () {
          const shell = yield* run(["echo", "$CMDOP_TEST;", "pwd;", "exit", "4"], {
            shell: true,
            env: { CMDOP_TEST: "bar" },
            cwd: "/"
          })
          assert.deepStrictEqual([shell.stdout, shell.exit.exitCode], ["bar\n/\n", 4])
          assert.strictEqual((yield* run(["pwd"])).stdout, `${subject.home}\n`)
        })
      )

      it.scoped("holds a chatty command while nobody pulls, then delivers what it wrote", () =>
        Effect.gen(function* () {
          const p = yield* spawn(spec(["yes", "chatty"]))
          assert.isTrue(yield* stillRunning(p), "yes ended on its own")
          const pull = yield* Stream.toPull(p.output)
          const first = text(yield* within(pull), "stdout")
          assert.match(first, /^(chatty\n)+/)
          assert.isTrue(yield* stillRunning(p), "yes ended while its output was being read")
          yield* p.kill
          const exit = yield* within(p.exit)
          assert.deepStrictEqual([exit.exitCode, exit.signal, exit.timedOut], [143, "TERM", false])
        })
      )

      it.scoped("a reader that goes away before the end stops the writer (SIGPIPE, or its write error)", () =>
        Effect.gen(function* () {
          const p = yield* spawn(spec(["yes"]))
          const taken = yield* within(Stream.runCollect(Stream.take(p.output, 1)))
          assert.strictEqual(taken.length, 1)
          const exit = yield* within(p.exit)
          // Node gives a child's stdout a socket, not a pipe: when the reader closes it with data unread, the next
          // write either raises SIGPIPE or fails with ECONNRESET, which `yes` reports by exiting 1. Either way the
          // writer stops by itself, at once, without being killed.
          assert.oneOf(`${exit.exitCode} ${exit.signal ?? "-"}`, ["141 PIPE", "1 -"])
          assert.isFalse(exit.timedOut)
        })
      )

      it.scoped("20 concurrent sessions complete while one output is never read", () =>
        Effect.gen(function* () {
          const hog = yield* spawn(spec(["yes"]))
          const results = yield* within(
            Effect.forEach(
              Array.from({ length: 19 }, (_, i) => i),
              (i) => Effect.flatMap(spawn(spec(["sh", "-c", `echo session ${i}; echo done 1>&2`])), finish),
              { concurrency: "unbounded" }
            )
          )
          results.forEach((result, i) =>
            assert.deepStrictEqual(
              [result.stdout, result.stderr, result.exit.exitCode],
              [`session ${i}\n`, "done\n", 0]
            )
          )
          assert.isTrue(yield* stillRunning(hog), "unread output was buffered without bound")
        })
      )
    })

    describe("stdin", () => {
      it.scoped("is empty and closed when none is announced", () =>
        Effect.gen(function* () {
          const result = yield* run(["cat"])
          assert.deepStrictEqual([result.stdout, result.exit.exitCode], ["", 0])
        })
      )

      it.scoped("round-trips through cat; closing twice is fine, writes after close are dropped", () =>
        Effect.gen(function* () {
          const p = yield* spawn(spec(["cat"], { stdin: true }))
          yield* p.write(new TextEncoder().encode("hello\n"))
          yield* p.closeStdin
          yield* p.closeStdin
          yield* p.write(new TextEncoder().encode("dropped\n"))
          const result = yield* within(finish(p))
          assert.deepStrictEqual([result.stdout, result.exit.exitCode], ["hello\n", 0])
        })
      )

      it.scoped("streams 8 MiB through cat in order, and counts it with wc -c", () =>
        Effect.gen(function* () {
          const data = pattern(8 * 1024 * 1024)
          const cat = yield* spawn(spec(["cat"], { stdin: true }))
          const [, echoed] = yield* within(
            Effect.all([feed(cat, data), Stream.runCollect(cat.output)], { concurrency: 2 })
          )
          const bytes = Buffer.concat(Chunk.toReadonlyArray(echoed).map((c) => c.data))
          assert.strictEqual(bytes.length, data.length)
          assert.strictEqual(sha256(bytes), sha256(data))
          const wc = yield* spawn(spec(["wc", "-c"], { stdin: true }))
          const [, counted] = yield* within(Effect.all([feed(wc, data), finish(wc)], { concurrency: 2 }))
          assert.deepStrictEqual([counted.stdout.trim(), counted.exit.exitCode], [String(data.length), 0])
        })
      )

      it.scoped("write waits while the command does not read, and is released when it exits", () =>
        Effect.gen(function* () {
          const p = yield* spawn(spec(["sleep", "30"], { stdin: true }))
          const writer = yield* Effect.fork(feed(p, pattern(4 * 1024 * 1024)))
          assert.isTrue(Option.isNone(yield* Effect.timeoutOption(Fiber.join(writer), "300 millis")), "write ran ahead")
          yield* p.kill
          yield* within(Fiber.join(writer))
          const exit = yield* within(p.exit)
          assert.deepStrictEqual([exit.exitCode, exit.signal], [143, "TERM"])
          yield* within(p.write(pattern(1024 * 1024)))
        })
      )
    })

    describe("signals, timeouts, scopes", () => {
      it.scoped("INT ends sleep with 130; unknown names and WINCH change nothing", () =>
        Effect.gen(function* () {
          const p = yield* spawn(spec(["sleep", "30"]))
          yield* p.signal("NOT-A-SIGNAL")
          yield* p.signal("WINCH")
          assert.isTrue(yield* stillRunning(p), "sleep ended on WINCH or an unknown signal")
          yield* p.signal("INT")
          const exit = yield* within(p.exit)
          assert.deepStrictEqual([exit.exitCode, exit.signal, exit.timedOut], [130, "INT", false])
        })
      )

      it.scoped("a timeout ends the command and reports 124", () =>
        Effect.gen(function* () {
          const result = yield* run(["sh", "-c", "echo started; sleep 30"], { timeoutMs: 300 })
          assert.deepStrictEqual(
            [result.stdout, result.exit.exitCode, result.exit.timedOut, result.exit.signal],
            ["started\n", 124, true, "TERM"]
          )
          assert.isAtLeast(result.exit.durationMs, 290)
          const quick = yield* run(["true"], { timeoutMs: 10_000 })
          assert.deepStrictEqual([quick.exit.exitCode, quick.exit.timedOut], [0, false])
        })
      )

      it.scoped("closing the spawn's scope ends the command", () =>
        Effect.gen(function* () {
          const p = yield* Effect.scoped(
            Effect.gen(function* () {
              const p = yield* spawn(spec(["sleep", "30"]))
              assert.isTrue(yield* stillRunning(p))
              return p
            })
          )
          const exit = yield* within(p.exit)
          assert.deepStrictEqual([exit.exitCode, exit.signal], [143, "TERM"])
        })
      )
    })
  })
