import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as net from "node:net"
import * as ConnectionGuard from "../../src/internal/connectionGuard.js"

/** Polls `probe` every 20 ms until it holds (at most 10 s). */
const eventuallySync = (what: string, probe: () => true | undefined) =>
  Effect.suspend(() => (probe() === true ? Effect.void : Effect.fail(`still waiting for ${what}`))).pipe(
    Effect.retry(Schedule.spaced("20 millis")),
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`timed out waiting for ${what}`) })
  )

describe("connection guard", () => {
  it.live("sockets over the per-source cap are closed before the server's own handler sees them", () =>
    Effect.gen(function* () {
      const seen: Array<net.Socket> = []
      const server = net.createServer((socket) => seen.push(socket))
      ConnectionGuard.guard(server, { perSource: 2, total: 100, silentForMs: 10_000 })
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => {
          server.listen(0, "127.0.0.1", () => resume(Effect.void))
        }),
        () => Effect.sync(() => server.close())
      )
      const { port } = server.address() as net.AddressInfo
      const closed = { count: 0 }
      const sockets = yield* Effect.acquireRelease(
        Effect.sync(() =>
          Array.from({ length: 4 }, () => {
            const socket = net.connect({ host: "127.0.0.1", port })
            socket.on("error", () => {})
            socket.on("close", () => (closed.count += 1))
            socket.resume()
            return socket
          })
        ),
        (all) => Effect.sync(() => all.forEach((s) => s.destroy()))
      )
      yield* eventuallySync("two refused sockets closed", () => (closed.count === 2 ? true : undefined))
      assert.strictEqual(sockets.length, 4)
      assert.strictEqual(seen.length, 2, "the server's handler ran for the admitted sockets only")
      // A closed slot is free again.
      seen[0]!.destroy()
      yield* eventuallySync("the slot freed", () => (closed.count === 3 ? true : undefined))
      const again = net.connect({ host: "127.0.0.1", port })
      again.on("error", () => {})
      yield* eventuallySync("a new socket admitted", () => (seen.length === 3 ? true : undefined))
      again.destroy()
    }).pipe(Effect.scoped)
  )
})
