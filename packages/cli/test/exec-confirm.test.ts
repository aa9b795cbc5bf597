/**
 * `cmdop connect exec primary -- …` in a real terminal (tmux), where "primary" is only part of db-primary's name:
 * the CLI asks before running anything, Enter means no, `y` runs it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Processes from "@cmdop/testkit/Processes"
import * as Effect from "effect/Effect"
import { terminal, terminalEnv, waitFor } from "./Tmux.js"
import { live as world } from "./World.js"

describe("exec on a machine named by a part of its name, in a terminal", () => {
  it.scopedLive("asks; Enter refuses and runs nothing, y runs the command there", () =>
    Effect.gen(function* () {
      const w = yield* world
      const key = yield* w.create("acme")
      yield* w.agent(key, "db-primary")
      const env = terminalEnv(w, key)
      const cmd = `${process.execPath} ${Processes.binPath} connect exec primary -- echo ran-$((6*7))`
      const no = yield* terminal("no", `${cmd}; echo "exit=$?"`, env)
      const asked = yield* waitFor(no.screen, /run the command there\? \[y\/N\]/, "the question")
      assert.match(asked, /"primary" is only part of db-primary's name \([0-9a-f-]{36}\)/)
      no.send("Enter")
      const refused = yield* waitFor(no.screen, /exit=\d+/, "the refusal")
      assert.include(refused, 'machine "primary" matches db-primary only by a substring of its name')
      assert.include(refused, "exit=255")
      assert.notInclude(refused, "ran-42")

      const yes = yield* terminal("yes", `${cmd}; echo "exit=$?"`, env)
      yield* waitFor(yes.screen, /run the command there\? \[y\/N\]/, "the question")
      yes.type("y")
      const ran = yield* waitFor(yes.screen, /exit=\d+/, "the command's end")
      assert.match(ran, /^ran-42\s*$/m)
      assert.include(ran, "exit=0")
    })
  )
})
