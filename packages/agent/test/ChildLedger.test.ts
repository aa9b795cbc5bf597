/**
 * The child ledger's journal: start and end lines appended, a forgotten child never killed, a live one killed by the
 * watchdog and by the next agent, and the file compacted once it grows well past what is live.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ChildLedger from "@cmdop/agent/ChildLedger"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { allGone, isRunning, tempDir, until } from "./helpers.js"

/** A `sleep` in its own process group (pid = group id), killed with the scope if still alive. */
const sleeper = Effect.acquireRelease(
  Effect.sync(() => {
    const child = ChildProcess.spawn("sleep", ["60"], { detached: true, stdio: "ignore" })
    child.unref()
    return child.pid!
  }),
  (pid) =>
    Effect.sync(() => {
      try {
        process.kill(-pid, "SIGKILL")
      } catch {
        // already gone
      }
    })
)

const lines = (file: string) =>
  fs
    .readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .filter((l) => l !== "")

describe("ChildLedger", () => {
  it.scopedLive("appends one line per start and end; the next agent reaps only what has no end line", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("cmdop-ledger-")
      const file = path.join(dir, "children")
      const [ended, live] = [yield* sleeper, yield* sleeper]
      const copy = path.join(dir, "left")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const ledger = yield* ChildLedger.make(file)
          yield* ledger.record("group", ended)
          yield* ledger.record("group", live)
          yield* ledger.forget(ended)
          const written = lines(file)
          assert.deepStrictEqual(
            written.map((l) => l.split(" ").slice(0, 2).join(" ")),
            [`group ${ended}`, `group ${live}`, `end ${ended}`]
          )
          fs.copyFileSync(file, copy)
        })
      )
      assert.isFalse(fs.existsSync(file), "removed with the scope")
      assert.strictEqual(yield* ChildLedger.reapLeftovers(copy), 1)
      yield* allGone([live])
      assert.isTrue(isRunning(ended), "an ended entry is never killed")
    })
  )

  it.scopedLive("the watchdog kills the live entries of a journal, not the ended ones", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("cmdop-ledger-")
      const file = path.join(dir, "children")
      const [ended, live] = [yield* sleeper, yield* sleeper]
      const start = (pid: number) => {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
        return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
      }
      fs.writeFileSync(
        file,
        `group ${ended} ${start(ended)}\ngroup ${live} ${start(live)}\nend ${ended} ${start(ended)}\n`
      )
      const watchdog = ChildLedger.startWatchdog(file)
      watchdog.stdin!.end()
      yield* allGone([live])
      yield* until("the watchdog to end", () => watchdog.exitCode !== null || !isRunning(watchdog.pid!))
      assert.isTrue(isRunning(ended), "an ended entry is never killed")
    })
  )

  it.scopedLive("the journal is compacted to what is live once it has grown", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir("cmdop-ledger-")
      const file = path.join(dir, "children")
      const [churn, live] = [yield* sleeper, yield* sleeper]
      const ledger = yield* ChildLedger.make(file)
      yield* ledger.record("group", live)
      let longest = 0
      for (let i = 0; i < 700; i++) {
        yield* ledger.record("group", churn)
        yield* ledger.forget(churn)
        longest = Math.max(longest, lines(file).length)
      }
      assert.isAtMost(longest, 520, "compacted on the way")
      assert.isAbove(longest, 100, "appended, not rewritten, between compactions")
      yield* ledger.record("group", churn)
      yield* ledger.forget(churn)
      const live_ = lines(file).filter((l) => !l.startsWith("end "))
      assert.includeMembers(
        live_.map((l) => l.split(" ")[1]),
        [String(live)]
      )
    })
  )
})
