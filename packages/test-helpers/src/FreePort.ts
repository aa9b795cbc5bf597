/**
 * A free TCP port on 127.0.0.1, for a test that must name a port before a process binds it (a port chosen this
 * way can in principle be taken by someone else before it is used; prefer binding port 0 where the code allows).
 */
import * as Effect from "effect/Effect"
import * as net from "node:net"

export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})
