/**
 * `daemon.status` and `cmdop.pid`: round trip, a dead pid reads as STOPPED, a corrupt file is an error, and the pid
 * file is claimed only when no live daemon holds it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as DaemonStatus from "@cmdop/agent/DaemonStatus"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { tempDir } from "./helpers.js"

const tempHome = tempDir("cmdop-status-")

const inHome = <A, E, R>(home: string, effect: Effect.Effect<A, E, R>) =>
  Effect.provide(effect, Layer.merge(NodeFileSystem.layer, CmdopPaths.layerHome(home)))

/** A pid that surely belongs to no process: one that just exited (and was reaped). */
const deadPid = () => {
  const child = ChildProcess.spawnSync("true")
  return child.pid!
}

const status = (pid: number): DaemonStatus.Status => ({
  state: "ONLINE",
  pid,
  since: "2026-04-22T11:04:31Z",
  server: "127.0.0.1:50051",
  workspace: "production",
  machine_id: "0b7c2a4e-1d3f-4a5b-8c6d-7e8f9a0b1c2d"
})

describe("DaemonStatus", () => {
  it.scopedLive("round-trips the status (0600) while the pid is alive", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      assert.isTrue(Option.isNone(yield* inHome(home, DaemonStatus.read)))
      const written = { ...status(process.pid), last_error: "boom" }
      yield* inHome(home, DaemonStatus.write(written))
      assert.deepStrictEqual(yield* inHome(home, DaemonStatus.read), Option.some(written))
      const file = path.join(home, ".cmdop", "daemon.status")
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      assert.deepStrictEqual(JSON.parse(fs.readFileSync(file, "utf8")), written)
    })
  )

  it.scopedLive("reports STOPPED when the pid is not alive", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      yield* inHome(home, DaemonStatus.write(status(deadPid())))
      const read = yield* inHome(home, DaemonStatus.read)
      assert.strictEqual(Option.getOrThrow(read).state, "STOPPED")
      assert.strictEqual(Option.getOrThrow(read).workspace, "production")
    })
  )

  it.scopedLive("a corrupt status file is an error naming it", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      fs.mkdirSync(path.join(home, ".cmdop"), { recursive: true })
      fs.writeFileSync(path.join(home, ".cmdop", "daemon.status"), '{"state":"SLEEPING"}')
      const exit = yield* Effect.exit(inHome(home, DaemonStatus.read))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
        assert.strictEqual(exit.cause.error.reason, "Corrupt")
        assert.include(exit.cause.error.message, "daemon.status")
      } else assert.fail("expected a typed failure")
    })
  )

  it.scopedLive(
    "the pid file is claimed for the scope, refused while a live daemon holds it, stale ones taken over",
    () =>
      Effect.gen(function* () {
        const home = yield* tempHome
        const pidFile = path.join(home, ".cmdop", "cmdop.pid")
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* inHome(home, DaemonStatus.acquirePid)
            assert.strictEqual(fs.readFileSync(pidFile, "utf8"), `${process.pid}\n`)
            assert.deepStrictEqual(yield* inHome(home, DaemonStatus.runningPid), Option.some(process.pid))
          })
        )
        assert.isFalse(fs.existsSync(pidFile))

        // Another live process (our parent) holds it.
        fs.writeFileSync(pidFile, `${process.ppid}\n`)
        const refused = yield* Effect.exit(Effect.scoped(inHome(home, DaemonStatus.acquirePid)))
        assert.isTrue(Exit.isFailure(refused))
        assert.strictEqual(fs.readFileSync(pidFile, "utf8"), `${process.ppid}\n`)
        // removePid never removes someone else's file.
        yield* inHome(home, DaemonStatus.removePid())
        assert.isTrue(fs.existsSync(pidFile))

        // A dead pid's file is stale.
        fs.writeFileSync(pidFile, `${deadPid()}\n`)
        assert.isTrue(Option.isNone(yield* inHome(home, DaemonStatus.runningPid)))
        yield* Effect.scoped(inHome(home, DaemonStatus.acquirePid))
        assert.isFalse(fs.existsSync(pidFile))
      })
  )
})
