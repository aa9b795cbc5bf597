/**
 * The README's embedding example is `examples/embedding.ts` verbatim, and it runs: in memory, with no port opened
 * and no socket dialed.
 */
import { assert, describe, it, vi } from "@effect/vitest"
import { eventuallySync } from "@cmdop/test-helpers/Eventually"
import * as Footprint from "@cmdop/test-helpers/Footprint"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"

const readme = fileURLToPath(new URL("../../../README.md", import.meta.url))
const example = fileURLToPath(new URL("../examples/embedding.ts", import.meta.url))

describe("README: Embedding", () => {
  it.live("the section's code block is examples/embedding.ts", () =>
    Effect.sync(() => {
      const text = fs.readFileSync(readme, "utf8")
      const section = text.slice(text.indexOf("\n## Embedding\n"))
      const block = /```ts\n([\s\S]*?)```/.exec(section)
      assert.isNotNull(block)
      assert.strictEqual(block![1], fs.readFileSync(example, "utf8"))
    })
  )

  it.scopedLive("the example runs a RelayClient program and the command tree on the memory layers, no sockets", () =>
    Effect.gen(function* () {
      const footprint = yield* Footprint.record
      const logged: Array<ReadonlyArray<unknown>> = []
      const spy = vi.spyOn(console, "log").mockImplementation((...args) => void logged.push(args))
      yield* Effect.addFinalizer(() => Effect.sync(() => spy.mockRestore()))
      yield* Effect.promise(() => import("../examples/embedding.js"))
      const result = yield* eventuallySync("the example's result", () =>
        logged.find((args) => typeof args[0] === "object")
      )
      assert.deepStrictEqual(result[0], { workspace: "acme", machines: 0, exitCode: 0 })
      const printed = logged.find((args) => typeof args[0] === "string")
      const whoami = JSON.parse(String(printed?.[0]))
      assert.strictEqual(whoami.source, "flag")
      assert.strictEqual(whoami.relay.workspace, "acme")
      assert.strictEqual(whoami.relay.principal_kind, "key")
      assert.deepStrictEqual(Footprint.violations(footprint), [])
    })
  )
})
