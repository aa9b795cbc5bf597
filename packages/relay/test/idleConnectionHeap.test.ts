/**
 * What an idle agent costs the relay: the V8 heap a real `relay serve` process holds per connected, greeted agent,
 * from the difference between 100 and 300 agents (after full collections, so garbage is not counted). An idle
 * agent used to hold ~54 KB here (the handler fiber's stack of wrappers, scopes and the handshake they kept); it
 * holds ~34 KB now. Native memory (nghttp2's ~23 KB per HTTP/2 session) is not in this figure; the bench's
 * "many idle agents" row measures the whole RSS (bench/README.md).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { fileURLToPath } from "node:url"
import { agents, serve, type ServedRelay } from "./servedRelay.js"

const probe = fileURLToPath(new URL("./heapProbe.cjs", import.meta.url))

/** The relay's V8 heap in use after full collections (`heapProbe.cjs`), in bytes. */
const heapOf = (relay: ServedRelay) =>
  Effect.async<number>((resume) => {
    const seen = relay.output().length
    const check = () => {
      const line = /heap-probe (\d+)/.exec(relay.output().slice(seen))
      if (line === null) return
      relay.process.stderr.off("data", check)
      resume(Effect.succeed(Number(line[1])))
    }
    relay.process.stderr.on("data", check)
    relay.process.kill("SIGUSR2")
  })

/** At most this much heap per idle agent connection (about 10 KB above today's figure, below the old one). */
const BOUND_KB = 44

describe("an idle agent connection's cost to the relay", () => {
  it.scopedLive(
    `holds under ${BOUND_KB} KB of the relay's heap`,
    () =>
      Effect.gen(function* () {
        const relay = yield* serve(["--require", probe])
        yield* agents(relay.server, relay.key, 100)
        const before = yield* heapOf(relay)
        yield* agents(relay.server, relay.key, 200, 100)
        const after = yield* heapOf(relay)
        const perAgent = (after - before) / 200 / 1000
        process.stderr.write(`relay heap per idle agent connection: ${perAgent.toFixed(1)} KB\n`)
        assert.isBelow(perAgent, BOUND_KB, `the relay holds ${perAgent.toFixed(1)} KB of heap per idle agent`)
      }),
    120_000
  )
})
