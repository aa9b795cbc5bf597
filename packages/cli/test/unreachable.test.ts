/**
 * A relay that refuses the connection (127.0.0.1:1): the failed call says so in one line, leaves no socket or
 * timer behind in the process that made it (the CLI as a library, calls in a row), and the real binary exits on its
 * own right after its error line, with nothing keeping it alive.
 */
import { assert, describe, it } from "@effect/vitest"
import { eventuallySync } from "@cmdop/test-helpers/Eventually"
import * as Footprint from "@cmdop/test-helpers/Footprint"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import { binPath, cli } from "./support.js"

const KEY = "ck_live_AAAAaaaa1111bbbb2222cccc3333dddd"
const OFFLINE = "127.0.0.1:1"
const LINE = `cmdop: relay ${OFFLINE} is unreachable: connection refused; is "cmdop relay serve" running there? (set --server or CMDOP_SERVER)\n`

const count = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length

describe("a relay that refuses the connection", () => {
  it.scopedLive("failed calls in a row leave no socket and no timer behind", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const sockets = count("TCPSocketWrap")
      const timers = count("Timeout")
      for (let i = 0; i < 10; i++) {
        // $ cmdop connect --list -k K -s 127.0.0.1:1;  cmdop connect exec vm -k K -s 127.0.0.1:1 -- true
        const list = yield* cli(home, ["connect", "--list", "-k", KEY, "-s", OFFLINE])
        assert.strictEqual(list.code, 255)
        assert.strictEqual(list.stderr, LINE)
        const exec = yield* cli(home, ["connect", "exec", "vm", "-k", KEY, "-s", OFFLINE, "--", "true"])
        assert.strictEqual(exec.code, 255)
        assert.strictEqual(exec.stderr, LINE)
      }
      // The last socket closes asynchronously after its channel; none stays, none accumulates.
      yield* eventuallySync("every socket closed", () => (count("TCPSocketWrap") <= sockets ? true : undefined))
      assert.isAtMost(count("Timeout"), timers, "no reconnect timer left running")
    })
  )

  it.scopedLive("after a failed call, nothing dials the relay again", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make()
      const list = yield* cli(home, ["connect", "--list", "-k", KEY, "-s", OFFLINE])
      assert.strictEqual(list.code, 255)
      // grpc-js 1.14 made one more attempt when its reconnect backoff (1 s, then 1.6 s) ran out, after the client
      // was closed (patches/@grpc__grpc-js@1.14.7.patch): watch past the second backoff.
      const footprint = yield* Footprint.record
      yield* Effect.sleep("3 seconds")
      assert.deepStrictEqual(footprint.connects(), [])
    })
  )

  it.live("the binary exits by itself right after its error line", () =>
    Effect.async<{ code: number | null; stderr: string; afterError: number }>((resume) => {
      const child = spawn(process.execPath, [binPath, "connect", "--list", "-k", KEY, "-s", OFFLINE], {
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
        stdio: ["ignore", "ignore", "pipe"]
      })
      let stderr = ""
      let errorAt = 0
      child.stderr.on("data", (d) => {
        stderr += d
        errorAt ||= performance.now()
      })
      child.on("exit", (code) => resume(Effect.succeed({ code, stderr, afterError: performance.now() - errorAt })))
      return Effect.sync(() => void child.kill("SIGKILL"))
    }).pipe(
      Effect.map((r) => {
        assert.strictEqual(r.code, 255)
        assert.strictEqual(r.stderr, LINE)
        // A lingering handle (grpc's reconnect backoff, an open socket) would hold the process for seconds to
        // minutes; a bound this loose only catches that, never a busy machine.
        assert.isBelow(r.afterError, 10_000)
      })
    )
  )
})
