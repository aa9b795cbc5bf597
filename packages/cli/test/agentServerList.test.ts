/**
 * `cmdop agent start --server a,b`: a list of relay nodes is checked entry by entry before anything starts, with
 * one error naming the bad entry and showing the form to use.
 */
import * as TempHome from "@cmdop/test-helpers/TempHome"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { cli } from "./support.js"

describe("agent start --server list", () => {
  it.scopedLive("an entry without a port, or an empty one, is refused with the form to use", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-server-list-")
      const noPort = yield* cli(home, ["agent", "start", "--foreground", "--server", "relay-1:50051,relay-2"])
      assert.strictEqual(noPort.code, 255)
      assert.include(noPort.stderr, '"relay-2" is not a relay address')
      assert.include(noPort.stderr, "--server relay-1:50051,relay-2:50051")
      const empty = yield* cli(home, ["agent", "start", "--foreground", "--server", "relay-1:50051,,relay-2:50051"])
      assert.strictEqual(empty.code, 255)
      assert.include(empty.stderr, "an empty entry is not a relay address")
    })
  )
})
