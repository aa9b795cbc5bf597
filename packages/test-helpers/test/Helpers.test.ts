import { assert, describe, it } from "@effect/vitest"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as net from "node:net"
import { execFile } from "node:child_process"
import * as CapturedConsole from "../src/CapturedConsole.js"
import * as Footprint from "../src/Footprint.js"
import { eventually, EventuallyTimeout } from "../src/Eventually.js"
import { freePort } from "../src/FreePort.js"
import * as Liveness from "../src/Liveness.js"
import * as TempHome from "../src/TempHome.js"

describe("eventually", () => {
  it.effect("polls until the probe yields a value, and returns it", () =>
    Effect.gen(function* () {
      const count = yield* Ref.make(0)
      const probe = Ref.updateAndGet(count, (n) => n + 1).pipe(Effect.map((n) => (n >= 3 ? `after ${n}` : undefined)))
      const fiber = yield* Effect.fork(eventually("three polls", probe, { interval: "1 second" }))
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), "after 3")
    })
  )

  it.effect("fails naming what it waited for after the timeout", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(
        Effect.flip(eventually("never", Effect.succeed(undefined), { timeout: "5 seconds", interval: "1 second" }))
      )
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(fiber)
      assert.instanceOf(error, EventuallyTimeout)
      assert.strictEqual(error.message, "timed out waiting for never")
    })
  )
})

describe("process and port helpers", () => {
  it.live("this process is running; a pid that does not exist is not", () =>
    Effect.sync(() => {
      assert.isTrue(Liveness.isRunning(process.pid))
      assert.isFalse(Liveness.isRunning(2 ** 22 + 1))
      assert.strictEqual(Liveness.programOf(2 ** 22 + 1), undefined)
    })
  )

  it.live("a free port can be bound", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const server = net.createServer()
      yield* Effect.async<void>((resume) => void server.listen(port, "127.0.0.1", () => resume(Effect.void)))
      yield* Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
    })
  )

  it.live("free ports asked for in a row, with nothing taking them in between, are all different", () =>
    Effect.gen(function* () {
      const ports = yield* Effect.all(Array.from({ length: 200 }, () => freePort))
      assert.strictEqual(new Set(ports).size, ports.length)
    })
  )

  it.live("a temp home exists inside its scope and is removed after", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.scoped(
        Effect.map(TempHome.make(), (d) => {
          assert.isTrue(fs.statSync(d).isDirectory())
          return d
        })
      )
      assert.isFalse(fs.existsSync(dir))
    })
  )

  it.effect("the captured console splits stdout and stderr", () =>
    Effect.gen(function* () {
      const captured = CapturedConsole.make()
      yield* Effect.withConsole(Effect.zipRight(Console.log("out", 1), Console.error("err")), captured.console)
      assert.strictEqual(captured.stdout(), "out 1\n")
      assert.strictEqual(captured.stderr(), "err\n")
    })
  )
})

describe("Footprint", () => {
  it.live("records listens, connects and spawns inside its scope, and nothing after", () =>
    Effect.gen(function* () {
      const seen = yield* Effect.scoped(
        Effect.gen(function* () {
          const footprint = yield* Footprint.record
          const server = net.createServer((socket) => socket.end())
          const port = yield* Effect.async<number>(
            (resume) =>
              void server.listen(0, "127.0.0.1", () =>
                resume(Effect.succeed((server.address() as net.AddressInfo).port))
              )
          )
          yield* Effect.async<void>((resume) => {
            const socket = net.connect(port, "127.0.0.1", () => socket.end())
            socket.on("close", () => resume(Effect.void))
          })
          yield* Effect.async<void>((resume) => void execFile("true", () => resume(Effect.void)))
          yield* Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
          return {
            listens: footprint.listens(),
            connects: footprint.connects(),
            spawned: footprint.spawned(),
            footprint
          }
        })
      )
      assert.strictEqual(seen.listens, 1)
      assert.strictEqual(seen.connects.length, 1)
      assert.match(seen.connects[0]!, /^127\.0\.0\.1:\d+$/)
      assert.deepStrictEqual(seen.spawned, ["true"])
      yield* Effect.async<void>((resume) => void execFile("true", () => resume(Effect.void)))
      assert.deepStrictEqual(seen.footprint.spawned(), ["true"])
      assert.deepStrictEqual(Footprint.violations(seen.footprint), [
        "listened on a port 1 time(s)",
        `opened a socket to ${seen.connects[0]}`,
        "started a child process: true"
      ])
    })
  )

  it.scoped("violations are none for code that stays in-process", () =>
    Effect.gen(function* () {
      const footprint = yield* Footprint.record
      yield* Effect.promise(() => Promise.resolve(JSON.stringify({ in: "process" })))
      assert.deepStrictEqual(Footprint.violations(footprint), [])
    })
  )
})
