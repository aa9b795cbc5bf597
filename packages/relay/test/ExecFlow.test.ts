/**
 * Exec flow control over one agent stream, with a hand-driven agent that keeps to its window: a client that stops
 * reading one session holds back only that session's output (its credit), never another session of the same agent;
 * and the relay acknowledges output only as its client reads it.
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { agentIdentity, memoryCore } from "./agentDouble.js"

const WINDOW = 64 * 1024
const PIECE = 16 * 1024

/** A relay with one agent ("box") driven by hand; its stream ends at an `End` offered to `toRelay`. */
const setup = Effect.gen(function* () {
  const { core, caller } = yield* memoryCore({ server: "test", staleAfter: "90 seconds", heartbeatSeconds: 30 })
  const toRelay = yield* Queue.unbounded<AgentLink.AgentMessage | typeof End>()
  const fromRelay = yield* Queue.unbounded<AgentLink.RelayMessage>()
  const incoming = Stream.fromQueue(toRelay).pipe(Stream.takeWhile((m): m is AgentLink.AgentMessage => m !== End))
  yield* core.connectAgent(caller, incoming).pipe(
    Stream.runForEach((m) => Queue.offer(fromRelay, m)),
    Effect.forkScoped
  )
  yield* Queue.offer(toRelay, {
    _tag: "Hello",
    identity: agentIdentity("box"),
    window: WINDOW,
    ptySessions: []
  })
  const welcome = yield* Queue.take(fromRelay)
  assert.strictEqual(welcome._tag, "Welcome")
  return { core, caller, toRelay, fromRelay }
})

const End = Symbol("End")

/** `n` bytes of a pattern that tells sessions and positions apart. */
const bytesOf = (seed: number, n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (seed + i * 7) % 256))

describe("exec flow control", () => {
  it.scoped("a client that stops reading one session does not stall another session on the same agent", () =>
    Effect.gen(function* () {
      const { caller, core, fromRelay, toRelay } = yield* setup
      const output = (sessionId: string, data: Uint8Array): AgentLink.AgentMessage => ({
        _tag: "SessionOutput",
        sessionId,
        pipe: "stdout",
        data,
        offset: 0
      })
      // What the relay asked the agent, by kind: opens in order, acks as bytes per session.
      const opens: Array<string> = []
      const acked = new Map<string, number>()
      const record = (m: AgentLink.RelayMessage) => {
        if (m._tag === "SessionOpen") opens.push(m.sessionId)
        if (m._tag === "SessionAck") acked.set(m.sessionId, (acked.get(m.sessionId) ?? 0) + m.bytes)
      }
      const awaitOne = Effect.map(Queue.take(fromRelay), record)
      const drainRelay = Effect.map(Queue.takeAll(fromRelay), Chunk.forEach(record))
      const untilOpened = (n: number) =>
        Effect.whileLoop({ while: () => opens.length < n, body: () => awaitOne, step: () => {} })

      // Session A: its client takes `Started` and then reads nothing.
      const pullA = yield* Stream.toPull(core.exec(caller, { machine: "box", argv: ["a"] }, undefined))
      assert.strictEqual(Chunk.unsafeHead(yield* pullA)._tag, "Started")
      yield* untilOpened(1)
      const a = opens[0]!
      // The agent fills A's whole window; nothing of it is read, so none of it is acknowledged.
      const aData = bytesOf(1, WINDOW)
      for (let at = 0; at < WINDOW; at += PIECE) yield* Queue.offer(toRelay, output(a, aData.subarray(at, at + PIECE)))

      // Session B on the same agent: ten windows' worth of output, sent within B's credit as the relay returns it.
      const clientB = yield* core
        .exec(caller, { machine: "box", argv: ["b"] }, undefined)
        .pipe(Stream.runCollect, Effect.fork)
      yield* untilOpened(2)
      const b = opens[1]!
      const total = 10 * WINDOW
      const bData = bytesOf(2, total)
      let sent = 0
      while (sent < total) {
        if (sent - (acked.get(b) ?? 0) + PIECE <= WINDOW) {
          yield* Queue.offer(toRelay, output(b, bData.subarray(sent, sent + PIECE)))
          sent += PIECE
        } else yield* awaitOne
      }
      yield* Queue.offer(toRelay, { _tag: "SessionExit", sessionId: b, exitCode: 0, timedOut: false, durationMs: 1 })
      const eventsB = Chunk.toReadonlyArray(yield* Fiber.join(clientB))
      const stdoutB = Buffer.concat(eventsB.flatMap((e) => (e._tag === "Stdout" ? [e.data] : [])))
      assert.isTrue(stdoutB.equals(bData), "B got all of its output, in order")
      assert.strictEqual(eventsB.at(-1)?._tag, "Exit")
      yield* drainRelay
      assert.strictEqual(acked.get(a) ?? 0, 0, "nothing of A was acknowledged: its client read none of it")

      // A's client reads at last: all of A's output arrives and is acknowledged.
      yield* Queue.offer(toRelay, { _tag: "SessionExit", sessionId: a, exitCode: 0, timedOut: false, durationMs: 1 })
      const restA: Array<Uint8Array> = []
      let exitA = false
      while (!exitA) {
        for (const e of Chunk.toReadonlyArray(yield* pullA)) {
          if (e._tag === "Stdout") restA.push(e.data)
          if (e._tag === "Exit") exitA = true
        }
      }
      assert.isTrue(Buffer.concat(restA).equals(aData), "A got all of its output, in order")
      yield* drainRelay
      assert.strictEqual(acked.get(a), WINDOW, "A's output is acknowledged once read")
    })
  )

  it.scoped("output queued before the agent's stream ends reaches the client in order, then the session fails", () =>
    Effect.gen(function* () {
      const { caller, core, fromRelay, toRelay } = yield* setup
      const pull = yield* Stream.toPull(core.exec(caller, { machine: "box", argv: ["a"] }, undefined))
      assert.strictEqual(Chunk.unsafeHead(yield* pull)._tag, "Started")
      let open: AgentLink.RelayMessage | undefined
      while (open?._tag !== "SessionOpen") open = yield* Queue.take(fromRelay)
      const sessionId = open.sessionId
      // Several messages wait in the session (its client is not reading) when the agent's stream ends.
      const data = bytesOf(3, 4 * PIECE)
      for (let at = 0; at < data.length; at += PIECE)
        yield* Queue.offer(toRelay, {
          _tag: "SessionOutput",
          sessionId,
          pipe: at === PIECE ? "stderr" : "stdout",
          data: data.subarray(at, at + PIECE),
          offset: 0
        })
      yield* Queue.offer(toRelay, End)
      const got: Array<Uint8Array> = []
      const pipes: Array<string> = []
      const failure = yield* Effect.flip(
        Effect.forever(
          Effect.map(pull, (events) => {
            for (const e of events)
              if (e._tag === "Stdout" || e._tag === "Stderr") {
                got.push(e.data)
                pipes.push(e._tag)
              }
          })
        )
      )
      assert.isTrue(Buffer.concat(got).equals(data), "every byte sent before the end arrived, in order")
      assert.deepStrictEqual(pipes, ["Stdout", "Stderr", "Stdout", "Stdout"])
      assert.isTrue(failure._tag === "Some" && failure.value._tag === "RelayError")
      assert.strictEqual(
        failure._tag === "Some" && failure.value._tag === "RelayError" && failure.value.reason,
        "MachineLost"
      )
    })
  )
})
