/**
 * Memory stays flat on a long-lived stream: a message written is garbage once it has left, even while the call goes
 * on (the relay→agent stream lives as long as the connection and carries every ack and heartbeat).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { setup } from "./fixtures/TestService.js"

v8.setFlagsFromString("--expose-gc")
const gc = vm.runInNewContext("gc") as () => void

/** Heap in use after full collections, in bytes. */
const heapAfterGc = Effect.sync(() => {
  for (let i = 0; i < 3; i++) gc()
  return v8.getHeapStatistics().used_heap_size
})

const MiB = 1024 * 1024

describe("retention", () => {
  it.scopedLive(
    "a server stream carrying 200,000 more messages keeps the heap flat",
    () =>
      Effect.gen(function* () {
        const { client } = yield* setup()
        const pull = yield* Stream.toPull(client.serverStream("ticks", { count: 0, padding: 0 }))
        let received = 0
        const receive = (upTo: number) =>
          Effect.gen(function* () {
            while (received < upTo) received += Chunk.size(yield* pull)
          })
        yield* receive(20_000)
        const before = yield* heapAfterGc
        yield* receive(220_000)
        const after = yield* heapAfterGc
        const grown = (after - before) / MiB
        // The server's write loop on `Stream.runForEachWhile` kept every message reachable: 88 MiB more here
        // (177 MiB for 200,000 messages each way of a bidi call); the tail-safe loop stays within noise.
        assert.isBelow(grown, 16, `heap grew by ${grown.toFixed(1)} MiB over 200,000 messages`)
      }),
    180_000
  )
})
