/**
 * The session engine driven without gRPC: a queue plays the relay's side of the link and every message the agent
 * sends is collected. The harness speaks the wire's messages and crosses to the engine's (the domain's agent link)
 * with `AgentLinkCodec`, as the daemon does. Real processes; heartbeats and silence on the TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import * as AgentEngine from "@cmdop/agent/AgentEngine"
import * as AgentLinkCodec from "@cmdop/protocol/AgentLinkCodec"
import * as AuditLog from "@cmdop/agent/AuditLog"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import * as PtySessions from "@cmdop/agent/PtySessions"
import type {
  AgentMessage,
  RelayMessage,
  SessionExit,
  SessionOutput
} from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import { Pipe } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { eventually, eventuallyEffect, isRunning } from "./helpers.js"

const Runner = Layer.effect(ProcessRunner.ProcessRunner, ProcessRunner.make({ killGrace: "300 millis" }))

const END = Symbol("end")

interface Harness {
  readonly fiber: Fiber.RuntimeFiber<void, unknown>
  readonly sent: Array<AgentMessage>
  readonly relay: (message: RelayMessage) => Effect.Effect<void>
  readonly end: Effect.Effect<void>
  /** Ends the link and waits for `serve` to complete: nothing is sent after this. */
  readonly quiesce: Effect.Effect<void, unknown>
  /** Acknowledge every output byte from now on (and what is outstanding), like a relay with a fast reader. */
  readonly startAcking: (sessionId: string) => Effect.Effect<void>
  /** True if the agent ever had more than `window` bytes of one session unacknowledged. */
  readonly overran: () => boolean
}

const start = (options: Partial<AgentEngine.Options> & { readonly failSendWhen?: (m: AgentMessage) => boolean } = {}) =>
  Effect.gen(function* () {
    const window = options.window ?? 64 * 1024
    const inbox = yield* Queue.unbounded<RelayMessage | typeof END>()
    const sent: Array<AgentMessage> = []
    const acking = new Set<string>()
    const sentBytes = new Map<string, number>()
    const ackedBytes = new Map<string, number>()
    let overran = false
    const ack = (sessionId: string, bytes: number) => {
      ackedBytes.set(sessionId, (ackedBytes.get(sessionId) ?? 0) + bytes)
      Queue.unsafeOffer(inbox, { kind: { $case: "ack", value: { sessionId, pipe: Pipe.PIPE_STDOUT, bytes } } })
    }
    const link: AgentEngine.Link<string> = {
      incoming: Stream.fromQueue(inbox).pipe(
        Stream.takeWhile((m) => m !== END),
        Stream.filterMap((m) => Option.fromNullable(AgentLinkCodec.relayMessageFromWire(m as RelayMessage)))
      ),
      send: (domain) =>
        Effect.suspend(() => {
          const message = AgentLinkCodec.agentMessageToWire(domain)
          if (options.failSendWhen?.(message)) return Effect.fail("send failed")
          sent.push(message)
          if (message.kind?.$case === "output") {
            const { sessionId, data } = message.kind.value
            const total = (sentBytes.get(sessionId) ?? 0) + data.length
            sentBytes.set(sessionId, total)
            if (total > (ackedBytes.get(sessionId) ?? 0) + window) overran = true
            if (acking.has(sessionId)) ack(sessionId, data.length)
          }
          return Effect.void
        })
    }
    const fiber = yield* AgentEngine.serve(link, {
      window,
      heartbeatInterval: options.heartbeatInterval ?? Duration.infinity,
      relaySilenceTimeout: options.relaySilenceTimeout ?? Duration.infinity,
      ...(options.ptySessions !== undefined ? { ptySessions: options.ptySessions } : {}),
      ...(options.auditLog !== undefined ? { auditLog: options.auditLog } : {})
    }).pipe(Effect.provide(Runner), Effect.forkScoped)
    const harness: Harness = {
      fiber,
      sent,
      relay: (message) => Queue.offer(inbox, message).pipe(Effect.asVoid),
      end: Queue.offer(inbox, END).pipe(Effect.asVoid),
      quiesce: Effect.zipRight(Queue.offer(inbox, END), Fiber.join(fiber)),
      startAcking: (sessionId) =>
        Effect.sync(() => {
          acking.add(sessionId)
          const outstanding = (sentBytes.get(sessionId) ?? 0) - (ackedBytes.get(sessionId) ?? 0)
          if (outstanding > 0) ack(sessionId, outstanding)
        }),
      overran: () => overran
    }
    return harness
  })

const exec = (
  sessionId: string,
  argv: ReadonlyArray<string>,
  extra: { readonly timeoutMs?: number; readonly stdin?: boolean } = {}
): RelayMessage => ({
  kind: {
    $case: "open",
    value: {
      sessionId,
      kind: {
        $case: "exec",
        value: {
          argv: [...argv],
          shell: false,
          timeoutMs: extra.timeoutMs ?? 0,
          stdin: extra.stdin ?? false,
          env: {},
          cwd: ""
        }
      },
      caller: { kind: "key", principal: "ck_test_abc", shareId: "" }
    }
  }
})

const input = (sessionId: string, data: string, eof = false): RelayMessage => ({
  kind: { $case: "input", value: { sessionId, data: Buffer.from(data), eof, caller: undefined } }
})

const outputs = (sent: ReadonlyArray<AgentMessage>, sessionId: string): Array<SessionOutput> =>
  sent.flatMap((m) => (m.kind?.$case === "output" && m.kind.value.sessionId === sessionId ? [m.kind.value] : []))

const text = (sent: ReadonlyArray<AgentMessage>, sessionId: string, pipe: Pipe) =>
  Buffer.concat(outputs(sent, sessionId).flatMap((o) => (o.pipe === pipe ? [o.data] : []))).toString("utf8")

const bytes = (sent: ReadonlyArray<AgentMessage>, sessionId: string) =>
  outputs(sent, sessionId).reduce((n, o) => n + o.data.length, 0)

const exits = (sent: ReadonlyArray<AgentMessage>, sessionId: string): Array<SessionExit> =>
  sent.flatMap((m) => (m.kind?.$case === "exit" && m.kind.value.sessionId === sessionId ? [m.kind.value] : []))

const exitOf = (h: Harness, sessionId: string) =>
  eventually(`the exit of ${sessionId}`, () => exits(h.sent, sessionId)[0])

describe("AgentEngine", () => {
  it.scopedLive("streams stdout and stderr, then exactly one exit with the code, after the last output", () =>
    Effect.gen(function* () {
      const h = yield* start()
      yield* h.relay(exec("s1", ["sh", "-c", "echo out; echo err >&2; exit 3"]))
      const exit = yield* exitOf(h, "s1")
      assert.strictEqual(exit.exitCode, 3)
      assert.strictEqual(exit.error, "")
      assert.isFalse(exit.timedOut)
      assert.isAtLeast(exit.durationMs, 0)
      assert.strictEqual(text(h.sent, "s1", Pipe.PIPE_STDOUT), "out\n")
      assert.strictEqual(text(h.sent, "s1", Pipe.PIPE_STDERR), "err\n")
      const lastOutput = h.sent.map((m) => m.kind?.$case).lastIndexOf("output")
      const exitIndex = h.sent.findIndex((m) => m.kind?.$case === "exit")
      assert.isAbove(exitIndex, lastOutput)
      yield* h.quiesce
      assert.strictEqual(exits(h.sent, "s1").length, 1)
    })
  )

  it.scopedLive("a session without acks stops at the window while another completes; acks resume it", () =>
    Effect.gen(function* () {
      const window = 64 * 1024
      const total = 10_000_000
      const h = yield* start({ window })
      yield* h.relay(exec("big", ["head", "-c", String(total), "/dev/zero"]))
      yield* eventually("the first window", () => (bytes(h.sent, "big") === window ? true : undefined))
      yield* h.relay(exec("small", ["echo", "hi"]))
      const small = yield* exitOf(h, "small")
      assert.strictEqual(small.exitCode, 0)
      assert.strictEqual(text(h.sent, "small", Pipe.PIPE_STDOUT), "hi\n")
      // `overran` checks every send: no byte beyond the window without acks, now or later.
      assert.strictEqual(bytes(h.sent, "big"), window, "no byte beyond the window without acks")
      assert.isFalse(h.overran())
      assert.strictEqual(exits(h.sent, "big").length, 0)

      yield* h.startAcking("big")
      const big = yield* exitOf(h, "big")
      assert.strictEqual(big.exitCode, 0)
      assert.strictEqual(bytes(h.sent, "big"), total)
      assert.isFalse(h.overran())
      for (const o of outputs(h.sent, "big")) assert.isAtMost(o.data.length, AgentEngine.MAX_CHUNK)
    })
  )

  it.scopedLive("a window smaller than a pipe read is honoured by splitting chunks", () =>
    Effect.gen(function* () {
      const h = yield* start({ window: 1000 })
      yield* h.relay(exec("s", ["head", "-c", "100000", "/dev/zero"]))
      yield* eventually("the first window", () => (bytes(h.sent, "s") === 1000 ? true : undefined))
      assert.strictEqual(bytes(h.sent, "s"), 1000)
      assert.isFalse(h.overran())
      yield* h.startAcking("s")
      yield* exitOf(h, "s")
      assert.strictEqual(bytes(h.sent, "s"), 100_000)
      assert.isFalse(h.overran())
    })
  )

  it.scopedLive("stdin is written in order, each chunk acknowledged with PIPE_STDIN, eof closes it", () =>
    Effect.gen(function* () {
      const h = yield* start()
      yield* h.relay(exec("cat", ["cat"], { stdin: true }))
      yield* h.relay(input("cat", "hello "))
      yield* h.relay(input("cat", "world", true))
      const exit = yield* exitOf(h, "cat")
      assert.strictEqual(exit.exitCode, 0)
      assert.strictEqual(text(h.sent, "cat", Pipe.PIPE_STDOUT), "hello world")
      const acks = h.sent.flatMap((m) => (m.kind?.$case === "ack" ? [m.kind.value] : []))
      assert.deepStrictEqual(acks, [
        { sessionId: "cat", pipe: Pipe.PIPE_STDIN, bytes: 6 },
        { sessionId: "cat", pipe: Pipe.PIPE_STDIN, bytes: 5 }
      ])
    })
  )

  it.scopedLive("close kills the tree and the exit still follows", () =>
    Effect.gen(function* () {
      const h = yield* start()
      yield* h.relay(exec("s", ["sh", "-c", "echo $$; exec sleep 100"]))
      const pid = Number(yield* eventually("the pid", () => text(h.sent, "s", Pipe.PIPE_STDOUT) || undefined))
      yield* h.relay({ kind: { $case: "close", value: { sessionId: "s", reason: "client gone" } } })
      const exit = yield* exitOf(h, "s")
      assert.strictEqual(exit.signal, "TERM")
      assert.strictEqual(exit.exitCode, 143)
      assert.isFalse(isRunning(pid))
    })
  )

  it.scopedLive("close of a session stalled on credit drops its output and still exits", () =>
    Effect.gen(function* () {
      const h = yield* start({ window: 1024 })
      yield* h.relay(exec("s", ["head", "-c", "10000000", "/dev/zero"]))
      yield* eventually("the window", () => (bytes(h.sent, "s") === 1024 ? true : undefined))
      yield* h.relay({ kind: { $case: "close", value: { sessionId: "s", reason: "client gone" } } })
      const exit = yield* exitOf(h, "s")
      assert.notStrictEqual(exit.exitCode, 0)
      assert.strictEqual(bytes(h.sent, "s"), 1024)
    })
  )

  it.scopedLive("signal is delivered to the process group", () =>
    Effect.gen(function* () {
      const h = yield* start()
      // Messages are handled in order, and the spawn returns once the command runs: no wait needed.
      yield* h.relay(exec("s", ["sleep", "100"]))
      yield* h.relay({ kind: { $case: "signal", value: { sessionId: "s", signal: "INT" } } })
      const exit = yield* exitOf(h, "s")
      assert.strictEqual(exit.signal, "INT")
      assert.strictEqual(exit.exitCode, 130)
    })
  )

  it.scopedLive("a timeout kills the command and reports timed_out", () =>
    Effect.gen(function* () {
      const h = yield* start()
      yield* h.relay(exec("s", ["sleep", "100"], { timeoutMs: 200 }))
      const exit = yield* exitOf(h, "s")
      assert.isTrue(exit.timedOut)
      assert.strictEqual(exit.exitCode, 124)
      assert.isAtLeast(exit.durationMs, 150)
    })
  )

  it.scopedLive("a command that cannot start exits 127 with the error", () =>
    Effect.gen(function* () {
      const h = yield* start()
      yield* h.relay(exec("s", ["cmdop-no-such-command"]))
      const exit = yield* exitOf(h, "s")
      assert.strictEqual(exit.exitCode, 127)
      assert.match(exit.error, /command not found: cmdop-no-such-command/)
    })
  )

  it.scopedLive("pty sessions are refused with 126 and an error without PtySessions", () =>
    Effect.gen(function* () {
      const h = yield* start()
      yield* h.relay({
        kind: {
          $case: "open",
          value: {
            sessionId: "p",
            kind: { $case: "pty", value: { cols: 80, rows: 24, term: "xterm", command: [] } },
            caller: undefined
          }
        }
      })
      const exit = yield* exitOf(h, "p")
      assert.strictEqual(exit.exitCode, 126)
      assert.strictEqual(exit.error, AgentEngine.PTY_UNSUPPORTED)
    })
  )

  it.scopedLive("a duplicate open is refused without touching the live session; unknown ids are ignored", () =>
    Effect.gen(function* () {
      const h = yield* start()
      yield* h.relay(exec("d", ["sh", "-c", "read x; echo got $x"], { stdin: true }))
      yield* h.relay(exec("d", ["echo", "second"]))
      const refused = yield* exitOf(h, "d")
      assert.strictEqual(refused.exitCode, 126)
      assert.match(refused.error, /already open/)
      for (const message of [
        input("nope", "x", true),
        { kind: { $case: "ack", value: { sessionId: "nope", pipe: Pipe.PIPE_STDOUT, bytes: 10 } } },
        { kind: { $case: "signal", value: { sessionId: "nope", signal: "KILL" } } },
        { kind: { $case: "close", value: { sessionId: "nope", reason: "" } } },
        { kind: { $case: "resize", value: { sessionId: "d", cols: 1, rows: 1 } } }
      ] satisfies Array<RelayMessage>)
        yield* h.relay(message)
      const before = h.sent.length
      yield* h.relay(input("d", "one\n", true))
      yield* eventually("the second exit", () => (exits(h.sent, "d").length === 2 ? true : undefined))
      assert.strictEqual(text(h.sent, "d", Pipe.PIPE_STDOUT), "got one\n")
      assert.strictEqual(exits(h.sent, "d")[1]!.exitCode, 0)
      // Only the live session's ack, output and exit: nothing for the unknown id.
      assert.isTrue(
        h.sent
          .slice(before)
          .every((m) => m.kind !== undefined && "sessionId" in m.kind.value && m.kind.value.sessionId === "d")
      )
    })
  )

  it.scoped("heartbeats go out on the clock, stamped with its time", () =>
    Effect.gen(function* () {
      const h = yield* start({ heartbeatInterval: "50 millis" })
      yield* TestClock.adjust("400 millis")
      const beats = h.sent.flatMap((m) => (m.kind?.$case === "heartbeat" ? [m.kind.value.at] : []))
      assert.isAtLeast(beats.length, 4)
      assert.isAtMost(beats.length, 9)
      const now = yield* Clock.currentTimeMillis
      for (const at of beats) assert.isTrue(Math.abs(now - at) < 1_000)
      assert.deepStrictEqual(beats, [50, 100, 150, 200, 250, 300, 350, 400])
    })
  )

  it.scopedLive("heartbeats keep flowing while a session is stalled on credit", () =>
    Effect.gen(function* () {
      const h = yield* start({ heartbeatInterval: "50 millis", window: 1024 })
      yield* h.relay(exec("s", ["head", "-c", "10000000", "/dev/zero"]))
      yield* eventually("the window", () => (bytes(h.sent, "s") === 1024 ? true : undefined))
      const count = () => h.sent.filter((m) => m.kind?.$case === "heartbeat").length
      const before = count()
      yield* eventually("three more heartbeats", () => (count() - before >= 3 ? true : undefined))
      assert.strictEqual(bytes(h.sent, "s"), 1024, "still stalled")
    })
  )

  it.scoped("relay silence fails with RelaySilentError; any message resets the timer", () =>
    Effect.gen(function* () {
      const h = yield* start({ relaySilenceTimeout: "200 millis" })
      for (let i = 0; i < 5; i++) {
        yield* TestClock.adjust("150 millis")
        yield* h.relay({ kind: { $case: "heartbeat", value: { at: yield* Clock.currentTimeMillis } } })
      }
      assert.isNull(h.fiber.unsafePoll())
      yield* TestClock.adjust("200 millis")
      const exit = yield* Fiber.await(h.fiber)
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        assert.instanceOf(error, AgentEngine.RelaySilentError)
      }
    })
  )

  it.scopedLive("the end of the link kills every session and ends serve", () =>
    Effect.gen(function* () {
      const h = yield* start()
      yield* h.relay(exec("a", ["sh", "-c", "echo $$; exec sleep 100"]))
      yield* h.relay(exec("b", ["sh", "-c", "echo $$; exec sleep 100"]))
      const a = Number(yield* eventually("pid a", () => text(h.sent, "a", Pipe.PIPE_STDOUT) || undefined))
      const b = Number(yield* eventually("pid b", () => text(h.sent, "b", Pipe.PIPE_STDOUT) || undefined))
      assert.isTrue(isRunning(a) && isRunning(b))
      yield* h.end
      const exit = yield* Fiber.await(h.fiber).pipe(Effect.timeout("10 seconds"))
      assert.isTrue(Exit.isSuccess(exit))
      assert.isFalse(isRunning(a))
      assert.isFalse(isRunning(b))
      assert.strictEqual(exits(h.sent, "a").length + exits(h.sent, "b").length, 0)
    })
  )

  it.scopedLive("a failed send ends serve with the link's error and kills the sessions", () =>
    Effect.gen(function* () {
      const h = yield* start({ failSendWhen: (m) => m.kind?.$case === "exit" })
      yield* h.relay(exec("a", ["sh", "-c", "echo $$; exec sleep 100"]))
      const a = Number(yield* eventually("pid a", () => text(h.sent, "a", Pipe.PIPE_STDOUT) || undefined))
      yield* h.relay(exec("b", ["true"]))
      const exit = yield* Fiber.await(h.fiber).pipe(Effect.timeout("10 seconds"))
      assert.deepStrictEqual(exit, Exit.fail("send failed"))
      assert.isFalse(isRunning(a))
    })
  )
})

const makePtys = (options: PtySessions.Options = {}) =>
  PtySessions.make({ shell: "/bin/sh", killGrace: "300 millis", ...options })

const ptyOpen = (
  sessionId: string,
  extra: { readonly command?: ReadonlyArray<string>; readonly cols?: number; readonly rows?: number } = {}
): RelayMessage => ({
  kind: {
    $case: "open",
    value: {
      sessionId,
      kind: {
        $case: "pty",
        value: {
          cols: extra.cols ?? 80,
          rows: extra.rows ?? 24,
          term: "",
          command: [...(extra.command ?? ["/bin/sh"])]
        }
      },
      caller: { kind: "user", principal: "alice@example.com", shareId: "" }
    }
  }
})

const replay = (sessionId: string, fromOffset: number): RelayMessage => ({
  kind: { $case: "replay", value: { sessionId, fromOffset } }
})

const ptyText = (outs: ReadonlyArray<SessionOutput>) => Buffer.concat(outs.map((o) => o.data)).toString("latin1")

/** PTY output: STDOUT, ≤ MAX_CHUNK, offsets contiguous from `from`. */
const assertContiguous = (outs: ReadonlyArray<SessionOutput>, from: number) => {
  let next = from
  for (const o of outs) {
    assert.strictEqual(o.pipe, Pipe.PIPE_STDOUT)
    assert.strictEqual(o.offset, next, "contiguous offsets")
    assert.isAtMost(o.data.length, AgentEngine.MAX_CHUNK)
    next += o.data.length
  }
  return next
}

describe("AgentEngine with PTY sessions", () => {
  it.scopedLive("streams output with offsets, acks input, resizes, replays on demand, ends with one exit", () =>
    Effect.gen(function* () {
      const ptys = yield* makePtys()
      const h = yield* start({ ptySessions: ptys })
      yield* h.startAcking("t")
      yield* h.relay(ptyOpen("t", { cols: 90, rows: 20 }))
      const line = "echo hi-$((1+1)); stty size\n"
      yield* h.relay(input("t", line))
      yield* eventually("hi-2 and the size", () =>
        /hi-2\r\n20 90\r\n/.test(ptyText(outputs(h.sent, "t"))) ? true : undefined
      )
      const acks = h.sent.flatMap((m) => (m.kind?.$case === "ack" ? [m.kind.value] : []))
      assert.deepStrictEqual(acks, [{ sessionId: "t", pipe: Pipe.PIPE_STDIN, bytes: line.length }])
      const [listed] = yield* ptys.list
      assert.strictEqual(listed!.owner, "alice@example.com")

      yield* h.relay({ kind: { $case: "resize", value: { sessionId: "t", cols: 100, rows: 33 } } })
      yield* h.relay(input("t", "stty size\n"))
      // Up to the prompt after the size: the shell then waits for input, so nothing more comes before the replay.
      yield* eventually("the new size and the prompt", () =>
        /33 100\r\n[^\n]*[$#] $/.test(ptyText(outputs(h.sent, "t"))) ? true : undefined
      )
      const before = outputs(h.sent, "t")
      const end = assertContiguous(before, 0)

      // A replay restarts this link's pump of the session from the offset asked for.
      yield* h.relay(replay("t", 5))
      yield* eventually("the replay", () => (outputs(h.sent, "t").length > before.length ? true : undefined))
      yield* h.relay(input("t", "echo bye-$((2*3)); exit 3\n"))
      const exit = yield* exitOf(h, "t")
      const after = outputs(h.sent, "t").slice(before.length)
      assertContiguous(after, 5)
      assert.strictEqual(ptyText(after).slice(0, end - 5), ptyText(before).slice(5))
      assert.include(ptyText(after), "bye-6\r\n", JSON.stringify({ after: ptyText(after), exit }))
      assert.strictEqual(exit.exitCode, 3)
      assert.strictEqual(exit.error, "")
      assert.strictEqual(exit.signal, "")
      const lastOutput = h.sent.map((m) => m.kind?.$case).lastIndexOf("output")
      assert.isAbove(
        h.sent.findIndex((m) => m.kind?.$case === "exit"),
        lastOutput
      )
      yield* h.quiesce
      assert.strictEqual(exits(h.sent, "t").length, 1)
      assert.deepStrictEqual(yield* ptys.list, [])
    })
  )

  it.scopedLive("a PTY session survives the link; a replay on the next link resumes exactly; exec sessions die", () =>
    Effect.gen(function* () {
      const ptys = yield* makePtys()
      const h1 = yield* start({ ptySessions: ptys })
      yield* h1.startAcking("p")
      yield* h1.relay(ptyOpen("p"))
      yield* h1.relay(exec("x", ["sh", "-c", "echo $$; exec sleep 100"]))
      const execPid = Number(yield* eventually("the exec pid", () => text(h1.sent, "x", Pipe.PIPE_STDOUT) || undefined))
      yield* h1.relay(input("p", "echo one-$((0+1)); echo shell=$$\n"))
      const shellPid = yield* eventually("the shell pid", () => {
        const match = /shell=(\d+)\r\n/.exec(ptyText(outputs(h1.sent, "p")))
        return match ? Number(match[1]) : undefined
      })
      const first = outputs(h1.sent, "p")
      const n = assertContiguous(first, 0)

      yield* h1.end
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(h1.fiber).pipe(Effect.timeout("10 seconds"))))
      assert.isFalse(isRunning(execPid), "exec sessions are killed with the link")
      assert.isTrue(isRunning(shellPid), "the PTY session keeps running")
      assert.deepStrictEqual(
        (yield* ptys.list).map((s) => s.sessionId),
        ["p"]
      )

      // Output produced while no link is up is kept in the ring.
      yield* ptys.write("p", Buffer.from("echo two-$((1+1))\n"), "alice@example.com")
      yield* eventuallyEffect(
        "output while no link is up",
        Effect.map(ptys.list, (list) => (list[0]!.outputOffset > n ? true : undefined))
      )
      assert.isAbove((yield* ptys.list)[0]!.outputOffset, n)

      const h2 = yield* start({ ptySessions: ptys })
      yield* h2.startAcking("p")
      yield* h2.relay(replay("p", n))
      yield* eventually("two-2", () => (ptyText(outputs(h2.sent, "p")).includes("two-2\r\n") ? true : undefined))
      yield* h2.relay(input("p", "exit 5\n"))
      const exit = yield* exitOf(h2, "p")
      assert.strictEqual(exit.exitCode, 5)
      const second = outputs(h2.sent, "p")
      const end = assertContiguous(second, n)
      const whole = yield* Stream.runCollect(ptys.output("p", 0))
      const expected = Buffer.concat([...whole].map((p) => p.data)).subarray(0, end)
      assert.isTrue(
        Buffer.concat([...first, ...second].map((o) => o.data)).equals(expected),
        "no byte lost or repeated"
      )
      yield* h2.quiesce
      assert.strictEqual(exits(h2.sent, "p").length, 1)
      assert.strictEqual(exits(h1.sent, "p").length, 0)
      assert.strictEqual(exits(h1.sent, "x").length, 0)
    })
  )

  it.scopedLive("PTY output waits for credit and resumes with acks", () =>
    Effect.gen(function* () {
      const ptys = yield* makePtys()
      const h = yield* start({ ptySessions: ptys, window: 4096 })
      yield* h.relay(ptyOpen("w"))
      yield* h.relay(input("w", "head -c 100000 /dev/zero | tr '\\0' x; echo END$((1+1))\n"))
      yield* eventually("the window", () => (bytes(h.sent, "w") === 4096 ? true : undefined))
      // `overran` checks every send: nothing beyond the window without acks, now or later.
      assert.strictEqual(bytes(h.sent, "w"), 4096, "nothing beyond the window without acks")
      assert.isFalse(h.overran())
      yield* h.startAcking("w")
      yield* eventually("the end", () => (ptyText(outputs(h.sent, "w")).includes("END2\r\n") ? true : undefined))
      assert.isFalse(h.overran())
      assertContiguous(outputs(h.sent, "w"), 0)
      assert.include(ptyText(outputs(h.sent, "w")), "x".repeat(100_000))
    })
  )

  it.scoped(
    "close and the idle timeout (on the TestClock) end a session with their reason; failures answered at once",
    () =>
      Effect.gen(function* () {
        const ptys = yield* makePtys({ idleTimeout: "300 millis", reapInterval: "20 millis" })
        const h = yield* start({ ptySessions: ptys })
        yield* h.startAcking("c")
        yield* h.relay(ptyOpen("c"))
        yield* h.relay(ptyOpen("idle"))
        yield* h.relay(input("c", "echo shell=$$\n"))
        const pid = yield* eventually("the shell pid", () => {
          const match = /shell=(\d+)\r\n/.exec(ptyText(outputs(h.sent, "c")))
          return match ? Number(match[1]) : undefined
        })
        yield* h.relay({ kind: { $case: "close", value: { sessionId: "c", reason: "client gone" } } })
        const closed = yield* exitOf(h, "c")
        assert.strictEqual(closed.error, "closed")
        assert.strictEqual(closed.signal, "HUP")
        assert.strictEqual(closed.exitCode, 129)
        assert.isFalse(isRunning(pid))
        assert.strictEqual(exits(h.sent, "idle").length, 0, "not idle while the clock stands still")
        yield* TestClock.adjust("300 millis")
        const idle = yield* exitOf(h, "idle")
        assert.strictEqual(idle.error, "idle")

        yield* h.relay(ptyOpen("missing", { command: ["cmdop-no-such-shell"] }))
        const missing = yield* exitOf(h, "missing")
        assert.strictEqual(missing.exitCode, 127)
        assert.strictEqual(missing.error, "command not found: cmdop-no-such-shell")
        yield* h.relay(replay("ghost", 0))
        const ghost = yield* exitOf(h, "ghost")
        assert.strictEqual(ghost.exitCode, 126)
        assert.strictEqual(ghost.error, AgentEngine.UNKNOWN_SESSION)
        // A replay of a session whose exit was already reported on this link is ignored.
        yield* h.relay(replay("c", 0))
        yield* h.quiesce
        assert.strictEqual(exits(h.sent, "c").length, 1)
        assert.strictEqual(exits(h.sent, "idle").length, 1)
      })
  )
})

describe("AgentEngine audit log", () => {
  const withCaller = (
    sessionId: string,
    data: string,
    caller: { readonly kind: string; readonly principal: string; readonly shareId: string }
  ): RelayMessage => ({
    kind: { $case: "input", value: { sessionId, data: Buffer.from(data), eof: false, caller } }
  })
  const owner = { kind: "user", principal: "alice@example.com", shareId: "" }
  const guest = { kind: "guest", principal: "share lnk_1", shareId: "lnk_1" }

  const entriesOf = (log: AuditLog.AuditLog["Type"], sessionId: string) =>
    Effect.map(log.read, (all) => all.filter((e) => e.session_id === sessionId))

  it.scopedLive("an exec session's open and end, with the caller and the argv's digest", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.makeMemory
      const h = yield* start({ auditLog: log })
      yield* h.relay(exec("e1", ["sh", "-c", "exit 4"]))
      yield* exitOf(h, "e1")
      const [open, end, ...rest] = yield* entriesOf(log, "e1")
      assert.deepStrictEqual(rest, [])
      assert.deepInclude(open, {
        event: "session_open",
        decision: "allow",
        caller: "ck_test_abc",
        caller_kind: "key",
        share_id: null,
        mode: "exec",
        command_digest: AuditLog.digest("sh\0-c\0exit 4")
      })
      assert.deepInclude(end, {
        event: "session_end",
        caller: "ck_test_abc",
        mode: "exec",
        exit_code: 4,
        reason: "exit"
      })
    })
  )

  it.scopedLive("an exec session's stdin is tallied per caller and written before its end line", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.makeMemory
      const h = yield* start({ auditLog: log })
      yield* h.relay(exec("in1", ["cat"], { stdin: true }))
      yield* h.relay(withCaller("in1", "hello ", guest))
      yield* h.relay(withCaller("in1", "world\n", guest))
      yield* h.relay({
        kind: { $case: "input", value: { sessionId: "in1", data: Buffer.alloc(0), eof: true, caller: guest } }
      })
      yield* exitOf(h, "in1")
      const entries = yield* entriesOf(log, "in1")
      assert.deepStrictEqual(
        entries.map((e) => e.event),
        ["session_open", "input", "session_end"]
      )
      assert.deepInclude(entries[1], {
        mode: "exec",
        caller: "share lnk_1",
        caller_kind: "guest",
        share_id: "lnk_1",
        bytes: 12
      })
    })
  )

  it.scopedLive("an exec session cut off by the link's end is recorded as such", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.makeMemory
      const h = yield* start({ auditLog: log })
      // The open is handled (and recorded) before the end of the link, which comes after it.
      yield* h.relay(exec("long", ["sleep", "30"]))
      yield* h.end
      yield* Fiber.join(h.fiber)
      const entries = yield* entriesOf(log, "long")
      assert.deepStrictEqual(
        entries.map((e) => [e.event, e.reason]),
        [
          ["session_open", undefined],
          ["session_end", "link closed"]
        ]
      )
    })
  )

  it.scopedLive("PTY input is attributed to each caller, one line per caller per burst; the end follows", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.makeMemory
      const ptys = yield* makePtys()
      const h = yield* start({ ptySessions: ptys, auditLog: log })
      yield* h.startAcking("p")
      yield* h.relay(ptyOpen("p"))
      // Keystroke by keystroke, as a terminal sends them.
      for (const c of "echo one\n") yield* h.relay(withCaller("p", c, owner))
      for (const c of "echo two\n") yield* h.relay(withCaller("p", c, guest))
      // The commands' output, not the terminal's echo of them (typed-ahead input may be echoed before the prompt).
      yield* eventually("both outputs", () =>
        /(?<!echo )one\r\n[\s\S]*(?<!echo )two\r\n/.test(ptyText(outputs(h.sent, "p"))) ? true : undefined
      )
      yield* h.relay(withCaller("p", "exit 7\n", guest))
      yield* exitOf(h, "p")
      const entries = yield* eventually("the end line", () => {
        const all = Effect.runSync(entriesOf(log, "p"))
        return all.some((e) => e.event === "session_end") ? all : undefined
      })
      // Open first, end last (naming the opener), the input in between: every keystroke counted, in a line or two
      // per caller (a burst may straddle a tick), each attributed to the caller who typed it.
      const open = entries[0]!
      const end = entries.at(-1)!
      const inputs = entries.slice(1, -1)
      assert.deepInclude(open, { event: "session_open", caller: "alice@example.com", caller_kind: "user", mode: "pty" })
      assert.strictEqual(open.command_digest, AuditLog.digest("/bin/sh"))
      assert.deepInclude(end, { event: "session_end", caller: "alice@example.com", exit_code: 7, reason: "exit" })
      for (const e of inputs) assert.deepInclude(e, { event: "input", mode: "pty" })
      const byCaller = (principal: string) => inputs.filter((e) => e.caller === principal)
      const ownerLines = byCaller("alice@example.com")
      const guestLines = byCaller("share lnk_1")
      assert.strictEqual(ownerLines.length + guestLines.length, inputs.length)
      assert.strictEqual(
        ownerLines.reduce((n, e) => n + e.bytes!, 0),
        9
      )
      assert.strictEqual(
        guestLines.reduce((n, e) => n + e.bytes!, 0),
        9 + 7
      )
      assert.isAtMost(ownerLines.length, 2)
      assert.isAtMost(guestLines.length, 3)
      for (const e of ownerLines) assert.deepInclude(e, { caller_kind: "user", share_id: null })
      for (const e of guestLines) assert.deepInclude(e, { caller_kind: "guest", share_id: "lnk_1" })
    })
  )

  it.scopedLive("a PTY open that fails is recorded as an open and an end with the error", () =>
    Effect.gen(function* () {
      const log = yield* AuditLog.makeMemory
      const ptys = yield* makePtys()
      const h = yield* start({ ptySessions: ptys, auditLog: log })
      yield* h.relay(ptyOpen("nope", { command: ["cmdop-no-such-shell"] }))
      yield* exitOf(h, "nope")
      const entries = yield* entriesOf(log, "nope")
      assert.deepStrictEqual(
        entries.map((e) => [e.event, e.exit_code, e.reason]),
        [
          ["session_open", undefined, undefined],
          ["session_end", 127, "command not found: cmdop-no-such-shell"]
        ]
      )
    })
  )
})
