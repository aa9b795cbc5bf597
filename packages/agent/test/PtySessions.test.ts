/**
 * Interactive sessions against real PTYs running /bin/sh, on real time: input and output, terminal size, the 1 MiB
 * ring with exact resumption by offset (also while output is flowing), Ctrl-C and signals, and every way a session
 * ends (exit, close with the whole tree killed, idle). The ring itself gets a property test against a plain buffer.
 */
import { assert, describe, it } from "@effect/vitest"
import * as processTree from "../src/internal/processTree.js"
import { ScrollbackRing } from "../src/internal/scrollbackRing.js"
import * as PtySessions from "@cmdop/agent/PtySessions"
import type { PtySpec } from "@cmdop/domain/AgentLink"
import * as Clock from "effect/Clock"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as FiberStatus from "effect/FiberStatus"
import * as Stream from "effect/Stream"
import * as fc from "effect/FastCheck"
import * as fs from "node:fs"
import * as TestClock from "effect/TestClock"
import { agentEnv, eventually, eventuallyEffect, isRunning, until } from "./helpers.js"
import * as os from "node:os"

type Service = PtySessions.PtySessions["Type"]

const SH: PtySpec = { _tag: "Pty", cols: 80, rows: 24, term: "", command: ["/bin/sh"] }

const make = (options: PtySessions.Options = {}) =>
  PtySessions.make({ shell: "/bin/sh", killGrace: "300 millis", ...options })

const input = (ptys: Service, id: string, text: string, principal = "ck_test_abc") =>
  ptys.write(id, Buffer.from(text), principal)

/** Reads `id`'s output from `from` in the background, checking that offsets are contiguous. */
const collect = (ptys: Service, id: string, from = 0) =>
  Effect.gen(function* () {
    const state = { start: -1, next: -1, gap: undefined as string | undefined, chunks: [] as Array<Buffer> }
    const fiber = yield* Stream.runForEach(ptys.output(id, from), (piece) =>
      Effect.sync(() => {
        if (state.start < 0) state.start = piece.offset
        else if (piece.offset !== state.next) state.gap ??= `expected offset ${state.next}, got ${piece.offset}`
        state.next = piece.offset + piece.data.length
        state.chunks.push(Buffer.from(piece.data))
      })
    ).pipe(Effect.forkScoped)
    return {
      fiber,
      state,
      bytes: () => Buffer.concat(state.chunks),
      text: () => Buffer.concat(state.chunks).toString("latin1")
    }
  })

/** Reads `id`'s output from `from` until the offset `end`, as one buffer (trimmed to `end`) with its start. */
const readRange = (ptys: Service, id: string, from: number, end: number) =>
  Effect.gen(function* () {
    const pieces = yield* Stream.runCollect(
      ptys.output(id, from).pipe(Stream.takeUntil((p) => p.offset + p.data.length >= end))
    )
    const list = Chunk.toReadonlyArray(pieces)
    let next = list[0]!.offset
    for (const p of list) {
      assert.strictEqual(p.offset, next, "contiguous offsets")
      assert.isAtMost(p.data.length, PtySessions.MAX_READ)
      next += p.data.length
    }
    const start = list[0]!.offset
    return { start, data: Buffer.concat(list.map((p) => p.data)).subarray(0, end - start) }
  })

/** The program a process runs now (`/proc/<pid>/comm`), or undefined once it is gone. */
const commOf = (pid: number): string | undefined => {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim()
  } catch {
    return undefined
  }
}

/** Output that ends with the shell's prompt (`$ ` or `# `) after `marker`: the shell now waits for input. */
const promptAfter = (marker: string) => new RegExp(`${marker}\\r\\n[^\\n]*[$#] $`)

const pidAfter = (text: string, label: string): number | undefined => {
  const match = new RegExp(`${label}=(\\d+)\\r`).exec(text)
  return match ? Number(match[1]) : undefined
}

describe("PtySessions", () => {
  it.scopedLive("runs the shell in a terminal: input, output, TERM, home, size and resize", () =>
    Effect.gen(function* () {
      const ptys = yield* make()
      const opened = yield* ptys.open("p1", { ...SH, cols: 100, rows: 30 }, "alice@example.com")
      assert.strictEqual(opened.outputOffset, 0)
      assert.strictEqual(opened.command, "/bin/sh")
      assert.strictEqual(opened.owner, "alice@example.com")
      const out = yield* collect(ptys, "p1")
      // The terminal echoes the typed line; only the shell's arithmetic produces "hello-2".
      yield* input(ptys, "p1", "echo hello-$((1+1))\n")
      yield* until("hello-2", () => out.text().includes("hello-2\r\n"))
      yield* input(ptys, "p1", 'echo "term=$TERM pwd=$(pwd)"; stty size\n')
      yield* until("the size", () => out.text().includes("30 100\r\n"))
      assert.include(out.text(), `term=xterm-256color pwd=${os.homedir()}\r\n`)
      yield* ptys.resize("p1", 120, 40)
      yield* input(ptys, "p1", "stty size\n")
      yield* until("the new size", () => out.text().includes("40 120\r\n"))
      const [listed] = yield* ptys.list
      assert.strictEqual(listed!.sessionId, "p1")
      assert.strictEqual(listed!.cols, 120)
      assert.strictEqual(listed!.rows, 40)
      assert.isAtLeast(listed!.outputOffset, out.bytes().length)
      assert.isAtLeast(listed!.lastActivityAt, listed!.createdAt)
      assert.isUndefined(out.state.gap)
      assert.strictEqual(out.state.start, 0)
    })
  )

  it.scopedLive("the shell never inherits the agent's own secrets (its workspace key); the rest goes on", () =>
    Effect.gen(function* () {
      // `agent start -k` gives the daemon its workspace key as CMDOP_API_KEY; a guest's shell must not see it.
      const vars = {
        CMDOP_API_KEY: "ck_live_agents_own_key",
        CMDOP_RELAY_DB: "postgres://u:pw@db/x",
        CMDOP_SERVER: "r:1"
      }
      yield* agentEnv(vars)
      const ptys = yield* make()
      yield* ptys.open("env1", SH, "share sl_1")
      const out = yield* collect(ptys, "env1")
      yield* input(ptys, "env1", 'echo "key=${CMDOP_API_KEY-none} db=${CMDOP_RELAY_DB-none} server=$CMDOP_SERVER."\n')
      yield* until("the variables", () => out.text().includes("server=r:1.\r\n"))
      assert.include(out.text(), "key=none db=none server=r:1.\r\n")
    })
  )

  it.scopedLive("a login shell by default; a missing command or a duplicate id is refused", () =>
    Effect.gen(function* () {
      const ptys = yield* make()
      const opened = yield* ptys.open("login", { _tag: "Pty", cols: 80, rows: 24, term: "xterm", command: [] }, "")
      assert.strictEqual(opened.command, "/bin/sh -l")
      const out = yield* collect(ptys, "login")
      yield* input(ptys, "login", "echo term=$TERM\n")
      yield* until("TERM", () => out.text().includes("term=xterm\r\n"))

      const missing = yield* Effect.either(ptys.open("x", { ...SH, command: ["cmdop-no-such-shell"] }, ""))
      assert.isTrue(Either.isLeft(missing) && missing.left.reason === "CommandNotFound")
      if (Either.isLeft(missing)) assert.strictEqual(missing.left.message, "command not found: cmdop-no-such-shell")
      const dup = yield* Effect.either(ptys.open("login", SH, ""))
      assert.isTrue(Either.isLeft(dup) && dup.left.reason === "AlreadyExists")
      const unknown = yield* Effect.either(input(ptys, "nope", "x"))
      assert.isTrue(Either.isLeft(unknown) && unknown.left.reason === "NotFound")
      assert.deepStrictEqual(
        (yield* ptys.list).map((s) => s.sessionId),
        ["login"]
      )
    })
  )

  it.scopedLive("the ring keeps the last 1 MiB; any offset resumes exactly", () =>
    Effect.gen(function* () {
      const ptys = yield* make()
      yield* ptys.open("big", SH, "")
      yield* input(ptys, "big", "head -c 3000000 /dev/zero | tr '\\0' x; echo DONE$((2+3))\n")
      const total = yield* eventuallyEffect(
        "DONE5 at the end of the output",
        Effect.gen(function* () {
          const [info] = yield* ptys.list
          if (info!.outputOffset < 3_000_000) return undefined
          const tail = yield* readRange(ptys, "big", info!.outputOffset - 64, info!.outputOffset)
          // Up to the prompt after DONE5: the shell then waits, so the output ends here.
          return promptAfter("DONE5").test(tail.data.toString("latin1")) ? info!.outputOffset : undefined
        })
      )
      const end = (yield* ptys.list)[0]!.outputOffset
      assert.isAtLeast(end, total)
      const all = yield* readRange(ptys, "big", 0, end)
      assert.strictEqual(all.start, end - PtySessions.DEFAULT_RING_BYTES, "clamped to the oldest byte held")
      assert.strictEqual(all.data.length, PtySessions.DEFAULT_RING_BYTES)
      assert.isTrue(/^x+DONE5\r\n/.test(all.data.toString("latin1")))
      for (const from of [end - 300_007, end - 65_536, end - 1, all.start + 1]) {
        const part = yield* readRange(ptys, "big", from, end)
        assert.strictEqual(part.start, from)
        assert.isTrue(part.data.equals(all.data.subarray(from - all.start)), `resumes exactly at ${from}`)
      }
      // Beyond the end: clamped to the end, then live.
      const later = yield* collect(ptys, "big", end + 1_000)
      yield* input(ptys, "big", "echo tail-$((3+4))\n")
      yield* until("live output", () => later.text().includes("tail-7"))
      assert.strictEqual(later.state.start, end)
    })
  )

  it.scopedLive("readers that subscribe while output flows get every byte exactly once", () =>
    Effect.gen(function* () {
      const ptys = yield* make()
      yield* ptys.open("flow", SH, "")
      const first = yield* collect(ptys, "flow")
      yield* input(ptys, "flow", "i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done; echo END$((1+1))\n")
      yield* until("the flow to start", () => first.text().includes("line-100\r\n"))
      const late: Array<Effect.Effect.Success<ReturnType<typeof collect>>> = []
      for (let i = 0; i < 5; i++) {
        const [info] = yield* ptys.list
        late.push(yield* collect(ptys, "flow", Math.max(0, info!.outputOffset - 1_000)))
        // The next reader joins once more output has come.
        yield* eventuallyEffect(
          "more output",
          Effect.map(ptys.list, ([now]) => (now!.outputOffset > info!.outputOffset ? true : undefined))
        )
      }
      // Every reader up to the prompt after the end: nothing more comes.
      const ended = promptAfter("END2")
      yield* until("the end, for every reader", () => [first, ...late].every((r) => ended.test(r.text())))
      const full = first.bytes()
      const lines = Array.from({ length: 20000 }, (_, i) => `line-${i}\r\n`).join("")
      assert.include(full.toString("latin1"), lines)
      assert.isUndefined(first.state.gap)
      for (const reader of late) {
        assert.isUndefined(reader.state.gap)
        assert.isTrue(reader.bytes().equals(full.subarray(reader.state.start)), `reader from ${reader.state.start}`)
      }
      assert.isBelow(late[0]!.state.start, late[4]!.state.start, "the readers joined at different points")
    })
  )

  it.scopedLive("Ctrl-C interrupts the foreground command; signal INT does too", () =>
    Effect.gen(function* () {
      const ptys = yield* make()
      yield* ptys.open("c", SH, "")
      const out = yield* collect(ptys, "c")
      yield* input(ptys, "c", "echo shell=$$\n")
      const shell = yield* eventually("the shell pid", () => pidAfter(out.text(), "shell"))
      /** The command runs once the terminal's foreground group is no longer the shell's. */
      const commandRuns = () => (processTree.foregroundGroup(shell) ?? shell) !== shell
      yield* input(ptys, "c", "sleep 30\n")
      yield* until("the command to start", () => out.text().includes("sleep 30\r\n") && commandRuns())
      yield* ptys.write("c", Uint8Array.of(0x03), "ck_test_abc")
      yield* input(ptys, "c", "echo back-$((40+2))\n")
      yield* until("the prompt after Ctrl-C", () => out.text().includes("back-42\r\n"), 3_000)

      yield* input(ptys, "c", "sleep 31\n")
      yield* until("the second command", () => out.text().includes("sleep 31\r\n") && commandRuns())
      yield* ptys.signal("c", "INT")
      yield* input(ptys, "c", "echo again-$((40+3))\n")
      yield* until("the prompt after SIGINT", () => out.text().includes("again-43\r\n"), 3_000)
    })
  )

  it.scopedLive("exit ends the session with its code, after the last output; then it is not listed", () =>
    Effect.gen(function* () {
      const ptys = yield* make()
      yield* ptys.open("e", SH, "")
      const out = yield* collect(ptys, "e")
      yield* input(ptys, "e", "echo bye-$((5*5)); exit 3\n")
      const exit = yield* ptys.exited("e").pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(exit.exitCode, 3)
      assert.strictEqual(exit.reason, "exit")
      assert.isUndefined(exit.signal)
      assert.isAtLeast(exit.durationMs, 0)
      // The reader ends by itself, having seen everything.
      yield* Fiber.join(out.fiber).pipe(Effect.timeout("5 seconds"))
      assert.include(out.text(), "bye-25\r\n")
      assert.deepStrictEqual(yield* ptys.list, [])
      const refused = yield* Effect.either(input(ptys, "e", "x"))
      assert.isTrue(Either.isLeft(refused) && refused.left.reason === "Ended")
      // Still replayable until it is forgotten.
      const replayed = yield* Stream.runCollect(ptys.output("e", 0))
      assert.include(Buffer.concat(Chunk.toReadonlyArray(replayed).map((p) => p.data)).toString("latin1"), "bye-25")
    })
  )

  it.scopedLive("close kills the whole tree, jobs that ignore HUP and TERM included", () =>
    Effect.gen(function* () {
      const ptys = yield* make()
      yield* ptys.open("k", SH, "")
      const out = yield* collect(ptys, "k")
      yield* input(
        ptys,
        "k",
        `echo shell=$$; sleep 100 & echo bg=$!; sh -c 'trap "" HUP TERM; exec sleep 101' & echo stubborn=$!\n`
      )
      const pids = yield* eventually("the pids", () => {
        const text = out.text()
        const all = ["shell", "bg", "stubborn"].map((label) => pidAfter(text, label))
        return all.every((p) => p !== undefined) ? (all as Array<number>) : undefined
      })
      // Both jobs run `sleep` (the stubborn one after setting its trap).
      yield* until("the jobs to run", () => commOf(pids[1]!) === "sleep" && commOf(pids[2]!) === "sleep")
      for (const pid of pids) assert.isTrue(isRunning(pid), `pid ${pid} runs`)
      const exit = yield* ptys.close("k").pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(exit.reason, "closed")
      assert.strictEqual(exit.exitCode, 128 + os.constants.signals.SIGHUP)
      assert.strictEqual(exit.signal, "HUP")
      yield* until("the tree to be gone", () => pids.every((pid) => !isRunning(pid)), 2_000)
      assert.deepStrictEqual(yield* ptys.list, [])
    })
  )

  it.scoped("a session without input or output for the idle timeout is closed as idle (on the TestClock)", () =>
    Effect.gen(function* () {
      const ptys = yield* make({ idleTimeout: "400 millis", reapInterval: "20 millis" })
      const openedAt = yield* Clock.currentTimeMillis
      yield* ptys.open("i", SH, "")
      // Input keeps it alive past the timeout.
      for (let i = 0; i < 6; i++) {
        yield* TestClock.adjust("150 millis")
        yield* input(ptys, "i", ":\n")
      }
      assert.strictEqual((yield* ptys.list).length, 1, "alive while used")
      yield* TestClock.adjust("399 millis")
      assert.strictEqual((yield* ptys.list).length, 1, "not idle before the timeout")
      yield* TestClock.adjust("20 millis")
      // The kill's signals are real: the shell's end arrives in real time.
      const exit = yield* eventuallyEffect(
        "the idle exit",
        Effect.map(ptys.exited("i"), (e) => e)
      )
      assert.strictEqual(exit.reason, "idle")
      assert.isAtLeast((yield* Clock.currentTimeMillis) - openedAt, 900 + 400)
      assert.deepStrictEqual(yield* ptys.list, [])
    })
  )

  it.scopedLive("input bursts are attributed to their principal", () =>
    Effect.gen(function* () {
      const ptys = yield* make()
      const events = yield* Stream.runCollect(Stream.take(ptys.inputs, 2)).pipe(Effect.forkScoped)
      // Subscribed once the reader waits for the first event.
      yield* eventuallyEffect(
        "the subscription",
        Effect.map(Fiber.status(events), (status) => (FiberStatus.isSuspended(status) ? true : undefined))
      )
      yield* ptys.open("a", SH, "owner")
      yield* input(ptys, "a", "echo 1\n", "alice")
      yield* input(ptys, "a", "ab", "bob")
      const got = Chunk.toReadonlyArray(yield* Fiber.join(events).pipe(Effect.timeout("5 seconds")))
      assert.deepStrictEqual(
        got.map((e) => [e.sessionId, e.principal, e.bytes]),
        [
          ["a", "alice", 7],
          ["a", "bob", 2]
        ]
      )
    })
  )

  it.scopedLive("closing the service kills every session", () =>
    Effect.gen(function* () {
      const { pid } = yield* Effect.scoped(
        Effect.gen(function* () {
          const ptys = yield* make()
          yield* ptys.open("s", SH, "")
          const out = yield* collect(ptys, "s")
          yield* input(ptys, "s", "echo shell=$$\n")
          const pid = yield* eventually("the pid", () => pidAfter(out.text(), "shell"))
          assert.isTrue(isRunning(pid))
          return { pid }
        })
      )
      // The scope's close waits for the kill: gone at once.
      assert.isFalse(isRunning(pid))
    })
  )
})

describe("ScrollbackRing", () => {
  it.prop(
    "holds exactly the last `capacity` bytes at their offsets",
    [fc.integer({ min: 1, max: 300 }), fc.array(fc.uint8Array({ maxLength: 400 }), { maxLength: 30 })],
    ([capacity, appends]) => {
      const ring = new ScrollbackRing(capacity)
      const all = Buffer.concat(appends)
      for (const data of appends) ring.append(data)
      assert.strictEqual(ring.total, all.length)
      assert.strictEqual(ring.oldest, Math.max(0, all.length - capacity))
      for (const from of [0, ring.oldest, Math.floor((ring.oldest + ring.total) / 2), ring.total, ring.total + 5]) {
        const { offset, data } = ring.read(from, 1_000)
        assert.strictEqual(offset, Math.min(Math.max(from, ring.oldest), ring.total))
        assert.isTrue(data.equals(all.subarray(offset)))
      }
      const { data } = ring.read(ring.oldest, 7)
      assert.isTrue(data.equals(all.subarray(ring.oldest, ring.oldest + 7)))
    }
  )
})
