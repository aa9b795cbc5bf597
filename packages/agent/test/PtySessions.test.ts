/**
 * Interactive sessions against real PTYs running /bin/sh, on real time: input and output, terminal size, the 1 MiB
 * ring with exact resumption by offset (also while output is flowing), Ctrl-C and signals, and every way a session
 * ends (exit, close with the whole tree killed, idle). The ring itself gets a property test against a plain buffer.
 */
import { assert, describe, it } from "@effect/vitest"
import { OutputRing } from "../src/internal/outputRing.js"
import * as PtySessions from "@cmdop/agent/PtySessions"
import type { PtySpec } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as fc from "effect/FastCheck"
import * as fs from "node:fs"
import * as os from "node:os"

type Service = PtySessions.PtySessions["Type"]

const SH: PtySpec = { cols: 80, rows: 24, term: "", command: ["/bin/sh"] }

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

/** Polls `probe` until it returns a value; fails the test after `millis`. */
const waitFor = <A>(what: string, probe: () => A | undefined, millis = 5_000): Effect.Effect<A, Error> =>
  Effect.gen(function* () {
    const deadline = Date.now() + millis
    for (;;) {
      const value = probe()
      if (value !== undefined) return value
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("10 millis")
    }
  })

/** Like `waitFor` with an effectful probe. */
const waitForEffect = <A, E>(
  what: string,
  probe: () => Effect.Effect<A | undefined, E>,
  millis = 10_000
): Effect.Effect<A, E | Error> =>
  Effect.gen(function* () {
    const deadline = Date.now() + millis
    for (;;) {
      const value = yield* probe()
      if (value !== undefined) return value
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("10 millis")
    }
  })

const until = (what: string, probe: () => boolean, millis?: number) =>
  waitFor(what, () => (probe() ? true : undefined), millis)

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

const isRunning = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)
    return state !== "Z" && state !== "X"
  } catch {
    return false
  }
}

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

  it.scopedLive("a login shell by default; a missing command or a duplicate id is refused", () =>
    Effect.gen(function* () {
      const ptys = yield* make()
      const opened = yield* ptys.open("login", { cols: 80, rows: 24, term: "xterm", command: [] }, "")
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
      const total = yield* waitForEffect("DONE5 at the end of the output", () =>
        Effect.gen(function* () {
          const [info] = yield* ptys.list
          if (info!.outputOffset < 3_000_000) return undefined
          const tail = yield* readRange(ptys, "big", info!.outputOffset - 64, info!.outputOffset)
          return tail.data.toString("latin1").includes("DONE5") ? info!.outputOffset : undefined
        })
      )
      yield* Effect.sleep("100 millis")
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
        yield* Effect.sleep("3 millis")
      }
      yield* until("the end", () => first.text().includes("END2\r\n"), 10_000)
      yield* Effect.sleep("50 millis")
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
      yield* input(ptys, "c", "sleep 30\n")
      yield* until("the command to start", () => out.text().includes("sleep 30\r\n"))
      yield* Effect.sleep("200 millis")
      yield* ptys.write("c", Uint8Array.of(0x03), "ck_test_abc")
      yield* input(ptys, "c", "echo back-$((40+2))\n")
      yield* until("the prompt after Ctrl-C", () => out.text().includes("back-42\r\n"), 3_000)

      yield* input(ptys, "c", "sleep 31\n")
      yield* until("the second command", () => out.text().includes("sleep 31\r\n"))
      yield* Effect.sleep("200 millis")
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
      const pids = yield* waitFor("the pids", () => {
        const text = out.text()
        const all = ["shell", "bg", "stubborn"].map((label) => pidAfter(text, label))
        return all.every((p) => p !== undefined) ? (all as Array<number>) : undefined
      })
      yield* Effect.sleep("100 millis")
      for (const pid of pids) assert.isTrue(isRunning(pid), `pid ${pid} runs`)
      const exit = yield* ptys.close("k").pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(exit.reason, "closed")
      assert.strictEqual(exit.exitCode, 128 + os.constants.signals.SIGHUP)
      assert.strictEqual(exit.signal, "HUP")
      yield* until("the tree to be gone", () => pids.every((pid) => !isRunning(pid)), 2_000)
      assert.deepStrictEqual(yield* ptys.list, [])
    })
  )

  it.scopedLive("a session without input or output for the idle timeout is closed as idle", () =>
    Effect.gen(function* () {
      const ptys = yield* make({ idleTimeout: "400 millis", reapInterval: "20 millis" })
      const openedAt = Date.now()
      yield* ptys.open("i", SH, "")
      // Input keeps it alive past the timeout.
      for (let i = 0; i < 6; i++) {
        yield* Effect.sleep("150 millis")
        yield* input(ptys, "i", ":\n")
      }
      assert.strictEqual((yield* ptys.list).length, 1, "alive while used")
      const exit = yield* ptys.exited("i").pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(exit.reason, "idle")
      assert.isAtLeast(Date.now() - openedAt, 900 + 400)
      assert.deepStrictEqual(yield* ptys.list, [])
    })
  )

  it.scopedLive("input bursts are attributed to their principal", () =>
    Effect.gen(function* () {
      const ptys = yield* make()
      const events = yield* Stream.runCollect(Stream.take(ptys.inputs, 2)).pipe(Effect.forkScoped)
      yield* Effect.sleep("20 millis")
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
          const pid = yield* waitFor("the pid", () => pidAfter(out.text(), "shell"))
          assert.isTrue(isRunning(pid))
          return { pid }
        })
      )
      // The scope's close waits for the kill: gone at once.
      assert.isFalse(isRunning(pid))
    })
  )
})

describe("OutputRing", () => {
  it.prop(
    "holds exactly the last `capacity` bytes at their offsets",
    [fc.integer({ min: 1, max: 300 }), fc.array(fc.uint8Array({ maxLength: 400 }), { maxLength: 30 })],
    ([capacity, appends]) => {
      const ring = new OutputRing(capacity)
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
