/**
 * `relay serve --max-connections-per-source` (and its variable) reach the relay's gRPC listener: a real relay
 * process admits that many connections from 127.0.0.1 and closes the next one on accept. Behind a load balancer
 * every agent comes from one address, which is why the cap can be raised at all.
 */
import { freePort } from "@cmdop/test-helpers/FreePort"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Processes from "@cmdop/testkit/Processes"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as net from "node:net"
import * as path from "node:path"

/** The HTTP/2 client preface and an empty SETTINGS frame: an admitted socket is answered with the server's SETTINGS. */
const PREFACE = Buffer.concat([
  Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
  Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])
])

/**
 * Opens `n` connections at once and holds them all for the scope: each one is "admitted" once the relay's HTTP/2
 * side answers it, "refused" if it is closed without a byte. Connections are opened one after the other, so the
 * refused ones are the last.
 */
const probe = (port: number, n: number) =>
  Effect.gen(function* () {
    const sockets: Array<net.Socket> = []
    yield* Effect.addFinalizer(() => Effect.sync(() => sockets.forEach((s) => s.destroy())))
    const outcomes: Array<Effect.Effect<"admitted" | "refused">> = []
    for (let i = 0; i < n; i++) {
      const socket = net.connect({ host: "127.0.0.1", port })
      sockets.push(socket)
      // Listened to at once, not when the outcome is awaited: a refused socket can be reset and closed before then
      // (an "error" event without a listener is an uncaught exception; a missed "close" would never resolve).
      socket.on("error", () => {})
      const settled = new Promise<"admitted" | "refused">((resolve) => {
        socket.once("data", () => resolve("admitted"))
        socket.once("close", () => resolve("refused"))
      })
      const outcome = Effect.promise(() => settled)
      // Connected before the next one starts: the relay sees them in this order.
      yield* Effect.async<void>((resume) => {
        socket.once("connect", () => resume(Effect.void))
        socket.once("close", () => resume(Effect.void))
      })
      socket.write(PREFACE)
      outcomes.push(outcome)
    }
    return yield* Effect.all(outcomes)
  })

const relay = (home: string, flags: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const [grpc, http] = [yield* freePort, yield* freePort]
    yield* Processes.daemon(
      home,
      [
        "relay",
        "serve",
        "--grpc-port",
        String(grpc),
        "--http-port",
        String(http),
        "--data-dir",
        path.join(home, `relay-${grpc}`),
        ...flags
      ],
      /relay serving/,
      { env, timeoutMs: 30_000 }
    )
    return grpc
  })

describe("relay serve --max-connections-per-source", () => {
  it.scopedLive(
    "the flag and CMDOP_RELAY_MAX_CONNECTIONS_PER_SOURCE set the gRPC cap per address; the default admits more",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make("cmdop-conns-")
        const [byFlag, byEnv, byDefault] = yield* Effect.all(
          [
            relay(home, ["--max-connections-per-source", "2"]),
            relay(home, [], { CMDOP_RELAY_MAX_CONNECTIONS_PER_SOURCE: "1" }),
            relay(home, [])
          ],
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(yield* probe(byFlag, 3), ["admitted", "admitted", "refused"])
        assert.deepStrictEqual(yield* probe(byEnv, 2), ["admitted", "refused"])
        assert.deepStrictEqual(yield* probe(byDefault, 3), ["admitted", "admitted", "admitted"])
      }),
    60_000
  )
})
