/**
 * Bulk exec output over real gRPC keeps every byte, in order, while the agent reuses its output buffers (a buffer
 * goes back to the pool once grpc-js has written the message in it): two sessions on one agent at once, each with
 * output that differs everywhere, checked by hash against the same command run here.
 */
import * as LoopbackRelay from "@cmdop/testkit/LoopbackRelay"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"

const commands = [
  ["seq", "1", "3000000"],
  ["seq", "7", "3", "9000000"]
]

describe("exec output over gRPC", () => {
  it.scopedLive(
    "two concurrent bulk sessions on one agent arrive intact",
    () =>
      Effect.gen(function* () {
        const relay = yield* LoopbackRelay.make()
        const key = yield* relay.createWorkspace("intact")
        yield* relay.startAgent(key, "bulk")
        yield* relay.waitOnline(key, ["bulk"])
        const client = yield* relay.client(key)
        const digestOf = (argv: ReadonlyArray<string>) =>
          Effect.suspend(() => {
            const hash = createHash("sha256")
            let bytes = 0
            return Stream.runForEach(client.exec({ machine: "bulk", argv: [...argv] }), (e) =>
              Effect.sync(() => {
                if (e._tag === "Stdout") {
                  hash.update(e.data)
                  bytes += e.data.byteLength
                }
              })
            ).pipe(Effect.map(() => ({ bytes, sha256: hash.digest("hex") })))
          })
        const got = yield* Effect.all(commands.map(digestOf), { concurrency: "unbounded" })
        for (const [i, argv] of commands.entries()) {
          const local = execFileSync(argv[0]!, argv.slice(1), { maxBuffer: 1 << 30 })
          assert.strictEqual(got[i]!.bytes, local.length, `${argv.join(" ")}: byte count`)
          assert.strictEqual(got[i]!.sha256, createHash("sha256").update(local).digest("hex"), argv.join(" "))
        }
      }),
    120_000
  )
})
