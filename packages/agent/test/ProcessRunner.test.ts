/**
 * What only the live exec engine has, beyond the contract it shares with its in-memory twin
 * (`ProcessRunnerContract.ts`): files that are not executable, a real shell's pipes and `$PATH`, backpressure seen
 * from the kernel's side (`/proc`), signals delivered to the whole process group, timeouts and kills that leave no
 * grandchild alive, and the KILL escalation after the grace period.
 */
import { assert, describe, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as path from "node:path"
import { agentEnv, allGone, isRunning, tempDir as makeTempDir, until } from "./helpers.js"
import type { RunningProcess } from "@cmdop/agent/ProcessRunner"
import { make, ProcessRunner } from "@cmdop/agent/ProcessRunner"
import { feed, finish, pattern, sha256, spawn, spec, text, within } from "./ProcessRunnerContract.js"

// Real processes and real time throughout (the layer excludes the test services, so `it.scoped` runs on the real clock); a short kill grace keeps the escalation test quick.
const TestRunner = Layer.effect(ProcessRunner, make({ killGrace: "300 millis" }))

/** Pulls stdout until `done` holds for what arrived so far. */
const readUntil = (p: RunningProcess, done: (stdout: string) => boolean) =>
  Effect.gen(function* () {
    const pull = yield* Stream.toPull(p.output)
    let stdout = ""
    while (!done(stdout)) {
      const chunks = yield* pull.pipe(Effect.catchAll(() => Effect.fail(new Error(`output ended: ${stdout}`))))
      stdout += text(chunks, "stdout")
    }
    return stdout
  })

/** Waits until `pid` runs `program`: a signal caught by the shell between fork and exec would be lost. */
const execd = (pid: number, program: string) =>
  Effect.gen(function* () {
    const comm = () => fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim()
    yield* until(`pid ${pid} to run ${program}`, () => comm() === program)
    assert.strictEqual(comm(), program)
  })

/** Waits (a while) for `pids` to be gone; answers those still running. */
const eventuallyGone = (pids: ReadonlyArray<number>) =>
  Effect.map(Effect.either(allGone(pids, "3 seconds")), () => pids.filter(isRunning))

/** The kernel function the process sleeps in (Linux `/proc/<pid>/wchan`), e.g. `sock_alloc_send_pskb`. */
const waitChannel = (pid: number) => fs.readFileSync(`/proc/${pid}/wchan`, "utf8")

/** Bytes the process has written so far (Linux `/proc/<pid>/io`). */
const bytesWritten = (pid: number) => Number(/wchar: (\d+)/.exec(fs.readFileSync(`/proc/${pid}/io`, "utf8"))![1])

const pidsIn = (stdout: string) =>
  stdout
    .split("\n")
    .filter((line) => /^\d+$/.test(line))
    .map(Number)

const tempDir = makeTempDir("cmdop-exec-")

layer(TestRunner, { excludeTestServices: true })("ProcessRunner", (it) => {
  describe("exit", () => {
    it.scoped("reports a non-executable file as 126, with empty output", () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const script = path.join(dir, "script.sh")
        fs.writeFileSync(script, "#!/bin/sh\necho hi\n", { mode: 0o644 })
        const denied = yield* within(Effect.flatMap(spawn(spec([script])), finish))
        assert.deepStrictEqual(
          [denied.stdout, denied.exit.exitCode, denied.exit.error, denied.exit.timedOut],
          ["", 126, `permission denied: ${script}`, false]
        )
      })
    )
  })

  describe("output", () => {
    it.scoped("runs through the shell with the env merged in and the given cwd", () =>
      Effect.gen(function* () {
        const dir = fs.realpathSync(yield* tempDir)
        const p = yield* spawn(
          spec(["echo", "$CMDOP_TEST", "|", "tr", "a-z", "A-Z;", "pwd;", "echo", "$PATH"], {
            shell: true,
            env: { CMDOP_TEST: "bar" },
            cwd: dir
          })
        )
        const result = yield* within(finish(p))
        assert.deepStrictEqual(result.stdout, `BAR\n${dir}\n${process.env.PATH}\n`)
      })
    )

    it.scoped("never hands the agent's own secrets to the command; the rest of its environment goes on", () =>
      Effect.gen(function* () {
        // `agent start -k` gives the daemon its workspace key this way; a guest's `env` must not print it.
        yield* agentEnv({ CMDOP_API_KEY: "ck_live_agents_own_key", CMDOP_CLUSTER_SECRET: "s", CMDOP_SERVER: "relay:1" })
        const p = yield* spawn(
          spec(["echo", "${CMDOP_API_KEY-none}", "${CMDOP_CLUSTER_SECRET-none}", "$CMDOP_SERVER"], { shell: true })
        )
        assert.strictEqual((yield* within(finish(p))).stdout, "none none relay:1\n")
      })
    )

    it.scoped("blocks a child writing 50 MiB while nobody pulls, then delivers every byte in order", () =>
      Effect.gen(function* () {
        const size = 50 * 1024 * 1024
        const data = pattern(size)
        const file = path.join(yield* tempDir, "big")
        fs.writeFileSync(file, data)
        const p = yield* spawn(spec(["cat", file]))
        const pull = yield* Stream.toPull(p.output)
        const received: Array<Uint8Array> = []
        let bytes = 0
        for (let i = 0; i < 3; i++) {
          for (const chunk of yield* pull) {
            assert.strictEqual(chunk.pipe, "stdout")
            assert.isAtMost(chunk.data.length, 256 * 1024)
            received.push(chunk.data)
            bytes += chunk.data.length
          }
        }
        // Unblocked, cat finishes 50 MiB in a few ms; paused, it must sit in pipe_write with little written.
        // Settled: cat sleeps in a write (Node's stdio is a socket pair: `sock_alloc_send_pskb`; `pipe_write` for a
        // pipe) and has written nothing more over five polls in a row, once the reader's buffers filled up.
        let last = -1
        let steady = 0
        yield* until("cat to block in its write", () => {
          const now = bytesWritten(p.pid)
          steady = /write|send/.test(waitChannel(p.pid)) && now === last ? steady + 1 : 0
          last = now
          return steady >= 5
        })
        const written = bytesWritten(p.pid)
        assert.isTrue(Option.isNone(yield* Effect.timeoutOption(p.exit, "200 millis")), "cat finished while paused")
        assert.isAtMost(written, 2 * 1024 * 1024)
        assert.strictEqual(bytesWritten(p.pid), written)
        const rest = yield* within(
          Stream.runCollect(Stream.repeatEffectOption(pull)).pipe(Effect.map(Chunk.flatMap((c) => c)))
        )
        for (const chunk of rest) {
          received.push(chunk.data)
          bytes += chunk.data.length
        }
        assert.strictEqual(bytes, size)
        assert.strictEqual(sha256(Buffer.concat(received)), sha256(data))
        assert.strictEqual((yield* within(p.exit)).exitCode, 0)
      })
    )
  })

  describe("stdin", () => {
    it.scoped("streams 20 MiB of stdin to wc -c and sha256sum", () =>
      Effect.gen(function* () {
        const data = pattern(20 * 1024 * 1024)
        const [count, hash] = yield* Effect.all(
          ["wc", "sha256sum"].map((program) =>
            Effect.gen(function* () {
              const p = yield* spawn(spec(program === "wc" ? ["wc", "-c"] : [program], { stdin: true }))
              const [, result] = yield* within(Effect.all([feed(p, data), finish(p)], { concurrency: 2 }))
              assert.strictEqual(result.exit.exitCode, 0)
              return result.stdout.trim()
            })
          ),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(count, String(data.length))
        assert.strictEqual(hash.split(" ")[0], sha256(data))
      })
    )
  })

  describe("signals and killing", () => {
    it.scoped("a signal reaches the whole group", () =>
      Effect.gen(function* () {
        const p = yield* spawn(spec(["sh", "-c", `trap "exit 7" TERM; sleep 30 & echo $!; wait`]))
        const [sleeper] = pidsIn(yield* within(readUntil(p, (out) => out.includes("\n"))))
        yield* execd(sleeper, "sleep")
        yield* p.signal("SIGTERM")
        yield* p.signal("NOT-A-SIGNAL")
        const exit = yield* within(p.exit)
        assert.deepStrictEqual([exit.exitCode, exit.signal], [7, undefined])
        assert.deepStrictEqual(yield* eventuallyGone([sleeper]), [])
      })
    )

    it.scoped("a timeout kills the tree and reports 124", () =>
      Effect.gen(function* () {
        const p = yield* spawn(spec(["sh", "-c", "sleep 100 & echo $!; sleep 100 & echo $!; wait"], { timeoutMs: 300 }))
        const result = yield* within(finish(p))
        const pids = pidsIn(result.stdout)
        assert.strictEqual(pids.length, 2)
        assert.deepStrictEqual([result.exit.exitCode, result.exit.timedOut, result.exit.signal], [124, true, "TERM"])
        assert.isAtLeast(result.exit.durationMs, 290)
        // Killed at the limit, not when the sleeps would end (100 s): generous for a loaded machine.
        assert.isBelow(result.exit.durationMs, 10_000)
        assert.deepStrictEqual(yield* eventuallyGone([p.pid, ...pids]), [])
      })
    )

    it.scoped(
      "a command that exited while what it left running holds its output: killed at the timeout, its own status",
      () =>
        Effect.gen(function* () {
          // `server &` without a redirect: the shell is gone at once, its child keeps stdout open.
          const p = yield* spawn(spec(["sh", "-c", "sleep 100 & echo $!; exit 7"], { timeoutMs: 400 }))
          const started = Date.now()
          const result = yield* within(finish(p))
          const [left] = pidsIn(result.stdout)
          assert.deepStrictEqual(
            [result.exit.exitCode, result.exit.timedOut, result.exit.signal],
            [7, false, undefined]
          )
          // The output ended at the deadline (it waited for sleep's 100 s before), and sleep is gone.
          assert.isAtLeast(Date.now() - started, 390)
          assert.isBelow(Date.now() - started, 10_000)
          assert.deepStrictEqual(yield* eventuallyGone([left!]), [])
        })
    )

    it.scoped("kill escalates to KILL for a tree that ignores TERM", () =>
      Effect.gen(function* () {
        const p = yield* spawn(spec(["sh", "-c", `trap "" TERM; sleep 100 & echo $!; wait`]))
        const [sleeper] = pidsIn(yield* within(readUntil(p, (out) => out.includes("\n"))))
        const started = Date.now()
        yield* p.kill
        assert.isAtLeast(Date.now() - started, 250)
        const exit = yield* within(p.exit)
        assert.deepStrictEqual([exit.exitCode, exit.signal, exit.timedOut], [137, "KILL", false])
        assert.deepStrictEqual(yield* eventuallyGone([sleeper]), [])
      })
    )

    it.scoped("closing the scope kills the tree", () =>
      Effect.gen(function* () {
        const pids = yield* Effect.scoped(
          Effect.gen(function* () {
            const p = yield* spawn(spec(["sh", "-c", "sleep 100 & echo $!; sleep 100"]))
            const [sleeper] = pidsIn(yield* within(readUntil(p, (out) => out.includes("\n"))))
            return [p.pid, sleeper]
          })
        )
        assert.deepStrictEqual(yield* eventuallyGone(pids), [])
      })
    )
  })

  it.scoped("20 concurrent sessions complete while one output is never read", () =>
    Effect.gen(function* () {
      const hog = yield* spawn(spec(["head", "-c", String(64 * 1024 * 1024), "/dev/zero"]))
      const results = yield* within(
        Effect.forEach(
          Array.from({ length: 19 }, (_, i) => i),
          (i) => Effect.flatMap(spawn(spec(["sh", "-c", `echo session ${i}; echo done 1>&2`])), finish),
          { concurrency: "unbounded" }
        )
      )
      results.forEach((result, i) =>
        assert.deepStrictEqual([result.stdout, result.stderr, result.exit.exitCode], [`session ${i}\n`, "done\n", 0])
      )
      assert.isTrue(Option.isNone(yield* Effect.timeoutOption(hog.exit, "200 millis")), "unread output was buffered")
      assert.isAtMost(bytesWritten(hog.pid), 2 * 1024 * 1024)
    })
  )
})
