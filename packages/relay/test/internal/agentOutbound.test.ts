import type * as AgentLink from "@cmdop/domain/AgentLink"
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import * as PullStream from "@cmdop/grpc/PullStream"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import { enqueue } from "../../src/internal/agentOutbound.js"
import * as Outbox from "../../src/internal/outbox.js"

/** The relay's messages to an agent that no credit window bounds are folded while one waits; the rest queue. */
describe("agentOutbound", () => {
  const waitingAfter = (messages: ReadonlyArray<AgentLink.RelayMessage>) =>
    Effect.gen(function* () {
      const outbox = Outbox.make<AgentLink.RelayMessage, RelayCallError>()
      for (const m of messages) enqueue(outbox, m)
      return Chunk.toReadonlyArray(yield* yield* PullStream.toPull(outbox.stream))
    })

  it.scoped("resizes: the latest size per session, in the place of the first", () =>
    Effect.gen(function* () {
      const resize = (sessionId: string, cols: number) =>
        ({ _tag: "SessionResize", sessionId, cols, rows: 24 }) as const
      const input = { _tag: "SessionInput", sessionId: "a", data: new Uint8Array([1]), eof: false } as const
      const sent = yield* waitingAfter([resize("a", 80), input, resize("b", 90), resize("a", 100), resize("a", 120)])
      assert.deepStrictEqual(sent, [resize("a", 120), input, resize("b", 90)])
    })
  )

  it.scoped("signals: one pending per name and session; input is never folded", () =>
    Effect.gen(function* () {
      const signal = (signal: string) => ({ _tag: "SessionSignal", sessionId: "a", signal }) as const
      const input = (byte: number) =>
        ({ _tag: "SessionInput", sessionId: "a", data: new Uint8Array([byte]), eof: false }) as const
      const sent = yield* waitingAfter([
        signal("INT"),
        input(1),
        signal("INT"),
        signal("TERM"),
        input(2),
        signal("INT")
      ])
      assert.deepStrictEqual(sent, [signal("INT"), input(1), signal("TERM"), input(2)])
    })
  )

  it.scoped("acknowledgements: summed per session and pipe, capped at 2^32 - 1", () =>
    Effect.gen(function* () {
      const ack = (sessionId: string, pipe: "stdout" | "stderr", bytes: number) =>
        ({ _tag: "SessionAck", sessionId, pipe, bytes }) as const
      const sent = yield* waitingAfter([ack("a", "stdout", 10), ack("a", "stderr", 5), ack("a", "stdout", 7)])
      assert.deepStrictEqual(sent, [ack("a", "stdout", 17), ack("a", "stderr", 5)])
      const huge = yield* waitingAfter([ack("a", "stdout", 0xffff_0000), ack("a", "stdout", 0xffff_0000)])
      assert.deepStrictEqual(huge, [ack("a", "stdout", 0xffff_ffff)])
    })
  )

  it.scoped("heartbeats: an agent that sends many and reads nothing gets one answer, the latest", () =>
    Effect.gen(function* () {
      const beats = Array.from({ length: 10_000 }, (_, i) => ({ _tag: "Heartbeat", at: i }) as const)
      assert.deepStrictEqual(yield* waitingAfter(beats), [{ _tag: "Heartbeat", at: 9_999 }])
    })
  )
})
