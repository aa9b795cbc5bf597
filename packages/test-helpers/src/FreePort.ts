/**
 * A free TCP port on 127.0.0.1, for a test that must name a port before a process binds it (a port chosen this
 * way can in principle be taken by someone else before it is used; prefer binding port 0 where the code allows).
 */
import * as Effect from "effect/Effect"
import * as net from "node:net"

export const freePort: Effect.Effect<number> = Effect.suspend(() => pick(8))

/**
 * Ports this process has handed out. The kernel may give the same free port to two `listen(0)` calls in a row when
 * nothing took it in between (a test asking for a gRPC and an HTTP port before starting the relay that takes both
 * got the same one twice); a port handed out once is not handed out again.
 */
const handedOut = new Set<number>()

const pick = (attempts: number): Effect.Effect<number> =>
  Effect.flatMap(askKernel, (port) => {
    if (!handedOut.has(port) || attempts <= 1) {
      handedOut.add(port)
      return Effect.succeed(port)
    }
    return pick(attempts - 1)
  })

const askKernel: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})
