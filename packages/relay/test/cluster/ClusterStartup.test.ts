/**
 * Nodes take turns starting: a second node waits for the startup lock until the first one is done (its scope
 * closed, or its process gone), then gets it.
 */
import * as ClusterStartup from "@cmdop/relay/cluster/ClusterStartup"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { PG_URL } from "./pgSchema.js"

describe("ClusterStartup", () => {
  it.live("a second node waits for the first to finish starting", () =>
    Effect.gen(function* () {
      const db = Redacted.make(PG_URL)
      const first = yield* Scope.make()
      yield* ClusterStartup.lock(db).pipe(Scope.extend(first))
      const second = yield* Effect.fork(Effect.scoped(ClusterStartup.lock(db)))
      // Still waiting while the first holds it: a short wait for it times out.
      const early = yield* Effect.scoped(ClusterStartup.lock(db, { timeout: "300 millis" })).pipe(Effect.flip)
      assert.include(early.message, "holds the startup lock")
      assert.isTrue((yield* Fiber.poll(second))._tag === "None", "the second node is still waiting")
      yield* Scope.close(first, Exit.void)
      yield* Fiber.join(second).pipe(Effect.timeout("10 seconds"))
    })
  )
})
