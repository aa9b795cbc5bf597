/**
 * PTY input is acknowledged in batches (`inputAckBatch`): a keystroke costs no ack message of its own, yet the
 * relay's input credit (the window, taken in pieces of at most 64 KiB) never waits for an ack the agent holds.
 */
import { assert, describe, it } from "@effect/vitest"
import * as AgentEngine from "@cmdop/agent/AgentEngine"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import * as PtySessions from "@cmdop/agent/PtySessions"
import type { AgentMessage, RelayMessage } from "@cmdop/domain/AgentLink"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { eventually } from "./helpers.js"

const Runner = Layer.effect(ProcessRunner.ProcessRunner, ProcessRunner.make({ killGrace: "300 millis" }))

/** An engine on a queue link with a real PTY running `cat` (the terminal echoes what it is sent). */
const start = (window: number) =>
  Effect.gen(function* () {
    const ptys = yield* PtySessions.make({ shell: "/bin/sh", killGrace: "300 millis" })
    const inbox = yield* Queue.unbounded<RelayMessage>()
    const sent: Array<AgentMessage> = []
    yield* AgentEngine.serve(
      { incoming: Stream.fromQueue(inbox), send: (m) => Effect.sync(() => void sent.push(m)) },
      { window, heartbeatInterval: Duration.infinity, relaySilenceTimeout: Duration.infinity, ptySessions: ptys }
    ).pipe(Effect.provide(Runner), Effect.forkScoped)
    yield* Queue.offer(inbox, {
      _tag: "SessionOpen",
      sessionId: "p",
      spec: { _tag: "Pty", cols: 80, rows: 24, term: "", command: ["/bin/sh", "-c", "exec cat >/dev/null"] }
    })
    const type = (data: Uint8Array) => Queue.offer(inbox, { _tag: "SessionInput", sessionId: "p", data, eof: false })
    const echoed = () =>
      sent.reduce((n, m) => n + (m._tag === "SessionOutput" && m.sessionId === "p" ? m.data.byteLength : 0), 0)
    const acks = () =>
      sent.flatMap((m) => (m._tag === "SessionAck" && m.sessionId === "p" && m.pipe === "stdin" ? [m.bytes] : []))
    return { type, echoed, acks }
  })

describe("PTY input acks", () => {
  it("batches leave room for a whole 64 KiB piece of input; windows of 64 KiB or less ack every input", () => {
    assert.strictEqual(AgentEngine.inputAckBatch(8 * 1024 * 1024), 64 * 1024)
    assert.strictEqual(AgentEngine.inputAckBatch(128 * 1024), 64 * 1024)
    assert.strictEqual(AgentEngine.inputAckBatch(100 * 1024), 36 * 1024)
    assert.strictEqual(AgentEngine.inputAckBatch(64 * 1024), 0)
    assert.strictEqual(AgentEngine.inputAckBatch(1024), 0)
  })

  it.scopedLive("keystrokes are acknowledged together once a batch is full, with every byte counted", () =>
    Effect.gen(function* () {
      const h = yield* start(1024 * 1024)
      for (let i = 0; i < 50; i++) yield* h.type(Uint8Array.of(0x61 + (i % 26)))
      // The terminal echoes each keystroke: once all 50 are back, all 50 were written (and not one acked).
      yield* eventually("the echo of 50 keystrokes", () => (h.echoed() >= 50 ? true : undefined))
      assert.deepStrictEqual(h.acks(), [])
      // A paste that fills the batch: one ack for everything so far.
      yield* h.type(new Uint8Array(64 * 1024 - 50).fill(0x62))
      yield* eventually("the batch's ack", () => (h.acks().length > 0 ? true : undefined))
      assert.deepStrictEqual(h.acks(), [64 * 1024])
    })
  )

  it.scopedLive("with a window of 64 KiB every input is acknowledged by itself", () =>
    Effect.gen(function* () {
      const h = yield* start(64 * 1024)
      for (let i = 0; i < 3; i++) yield* h.type(Uint8Array.of(0x61, 0x62))
      yield* eventually("three acks", () => (h.acks().length >= 3 ? true : undefined))
      assert.deepStrictEqual(h.acks(), [2, 2, 2])
    })
  )
})
