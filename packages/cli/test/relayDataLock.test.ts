/**
 * One relay per embedded store: while one holds the data dir's lock, a second is refused with a message naming
 * the holder and the ways out; once the first is gone (its scope closed; the kernel does the same for a dead
 * process), the next one starts.
 */
import { lockDataDir } from "@cmdop/cli/commands/relayDataLock"
import * as RelayServer from "@cmdop/relay/RelayServer"
import { freePort } from "@cmdop/test-helpers/FreePort"
import * as Processes from "@cmdop/testkit/Processes"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
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

  it.scopedLive(
    "the in-process RelayServer.serve takes the same lock: cmdop up, relay serve and a second serve are refused",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make("cmdop-lock-")
        const dataDir = path.join(home, "relay")
        const serve = (port: number) => RelayServer.serve({ dataDir, grpcPort: port, httpPort: 0, host: "127.0.0.1" })
        const first = yield* Scope.make()
        yield* serve(0).pipe(Scope.extend(first))
        const inProcess = yield* Effect.flip(Effect.scoped(serve(0)))
        assert.include(
          inProcess.message,
          `another relay (pid ${process.pid}) is already serving the data dir ${dataDir}`
        )

        const [grpc, http] = [yield* freePort, yield* freePort]
        const up = yield* Processes.run(
          home,
          ["up", "--grpc-port", String(grpc), "--http-port", String(http), "--data-dir", dataDir],
          { timeoutMs: 30_000 }
        )
        assert.notStrictEqual(up.code, 0)
        assert.include(up.stderr, `another relay (pid ${process.pid}) is already serving the data dir ${dataDir}`)
        assert.notInclude(up.stdout, "cmdop is up")
        // Refused before it touched anything: no workspace saved, no agent registered.
        assert.isFalse(fs.existsSync(path.join(home, ".cmdop", "ssh_workspaces.json")), "up saved no workspace")

        const relay = yield* Processes.run(
          home,
          ["relay", "serve", "--grpc-port", String(grpc), "--http-port", String(http), "--data-dir", dataDir],
          { timeoutMs: 30_000 }
        )
        assert.notStrictEqual(relay.code, 0)
        assert.include(relay.stderr, "is already serving the data dir")

        // Once the first relay is gone, the next in-process relay starts on that data dir.
        yield* Scope.close(first, Exit.void)
        yield* Effect.scoped(serve(0))
      }),
    60_000
  )
})
