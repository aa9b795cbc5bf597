import { assert, describe, it } from "@effect/vitest"
import * as AgentEngine from "@cmdop/agent/AgentEngine"
import * as FastCheck from "effect/FastCheck"

const chunk = FastCheck.record({
  pipe: FastCheck.constantFrom("stdout" as const, "stderr" as const),
  data: FastCheck.uint8Array({ minLength: 1, maxLength: 96 * 1024 })
})

describe("output coalescing", () => {
  it.prop(
    "keeps every byte of each pipe in order, never exceeds MAX_CHUNK, never joins across pipes",
    [FastCheck.array(chunk, { maxLength: 12 })],
    ([chunks]) => {
      const out = AgentEngine.coalesce(chunks)
      for (const pipe of ["stdout", "stderr"] as const) {
        const before = Buffer.concat(chunks.filter((c) => c.pipe === pipe).map((c) => c.data))
        const after = Buffer.concat(out.filter((c) => c.pipe === pipe).map((c) => c.data))
        assert.isTrue(before.equals(after))
      }
      // Interleaving between pipes is preserved: the sequence of pipe switches is the same.
      const switches = (xs: ReadonlyArray<{ readonly pipe: string }>) =>
        xs.map((x) => x.pipe).filter((p, i, all) => i === 0 || all[i - 1] !== p)
      assert.deepStrictEqual(switches(out), switches(chunks))
      for (const c of out)
        assert.isTrue(c.data.length <= AgentEngine.MAX_CHUNK || chunks.some((x) => x.data === c.data))
      assert.isAtMost(out.length, chunks.length)
    }
  )
})
