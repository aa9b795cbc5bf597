/**
 * A client whose server is a list of cluster nodes (`connect key set KEY --server a:50051,b:50051`, or the same in
 * `--server` / `CMDOP_SERVER`): the call goes to the first node that accepts a connection. It used to hand the whole
 * list to gRPC as one name ("Name resolution failed for target dns:a:50051,b:50051").
 */
import { assert, describe, it } from "@effect/vitest"
import * as Processes from "@cmdop/testkit/Processes"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Effect from "effect/Effect"
import * as World from "./World.js"

/** A port nothing listens on: the first node of the list is down. */
const DOWN = "127.0.0.1:1"

describe("a client given several relay nodes", () => {
  it.scopedLive("uses the first that answers: from --server, from the environment, and as stored by key set", () =>
    Effect.gen(function* () {
      const world = yield* World.live
      const key = yield* world.create("nodes")
      yield* world.agent(key, "listed-box")
      const list = `${DOWN},${world.server}`
      const home = yield* TempHome.make("cmdop-nodes-client-")

      const byFlag = yield* Processes.run(home, ["connect", "--list", "--json", "-k", key, "-s", list])
      assert.strictEqual(byFlag.code, 0, byFlag.stderr)
      assert.include(byFlag.stdout, "listed-box")

      const byEnv = yield* Processes.run(home, ["connect", "--list", "--json"], {
        env: { CMDOP_API_KEY: key, CMDOP_SERVER: list }
      })
      assert.strictEqual(byEnv.code, 0, byEnv.stderr)
      assert.include(byEnv.stdout, "listed-box")

      const set = yield* Processes.run(home, ["connect", "key", "set", key, "--server", list, "--workspace", "nodes"])
      assert.strictEqual(set.code, 0, set.stderr)
      const stored = yield* Processes.run(home, ["connect", "exec", "listed-box", "--", "echo", "through a list"])
      assert.strictEqual(stored.code, 0, stored.stderr)
      assert.strictEqual(stored.stdout, "through a list\n")

      // None of them up: the error names the first node, as for a single address.
      const none = yield* Processes.run(home, ["connect", "--list", "-k", key, "-s", `${DOWN},127.0.0.1:2`])
      assert.strictEqual(none.code, 255)
      assert.include(none.stderr, `relay ${DOWN} is unreachable`)
    })
  )
})
