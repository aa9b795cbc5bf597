/**
 * One relay per embedded store: while one holds the data dir's lock, a second is refused with a message naming
 * the holder and the ways out; once the first is gone (its scope closed; the kernel does the same for a dead
 * process), the next one starts.
 */
import { lockDataDir } from "@cmdop/cli/commands/relayDataLock"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as path from "node:path"

describe("relay serve data dir lock", () => {
  it.scopedLive("a second relay on the same data dir is refused until the first one is gone", () =>
    Effect.gen(function* () {
      const dataDir = path.join(yield* TempHome.make("cmdop-lock-"), "relay")
      const first = yield* Scope.make()
      yield* lockDataDir(dataDir).pipe(Scope.extend(first))
      const refused = yield* Effect.flip(Effect.scoped(lockDataDir(dataDir)))
      assert.include(refused.message, `another relay (pid ${process.pid}) is already serving the data dir ${dataDir}`)
      assert.include(refused.message, "--db postgres://")
      yield* Scope.close(first, Exit.void)
      yield* Effect.scoped(lockDataDir(dataDir))
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )
})
