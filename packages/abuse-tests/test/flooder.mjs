// The idle-socket attacker as its own process: `count` sockets to each `host:port@localAddress` target that connect
// and never send a byte. Prints one JSON line every 100 ms: per target, how many are open and how many settled
// (connected, or failed to). Runs until killed.
import * as net from "node:net"

const [count, ...targets] = process.argv.slice(2)
const states = targets.map((target) => {
  const [address, localAddress] = target.split("@")
  const [host, port] = address.split(":")
  const state = { open: 0, settled: 0 }
  for (let i = 0; i < Number(count); i++) {
    const socket = net.connect({ host, port: Number(port), localAddress })
    let connected = false
    socket.on("connect", () => {
      connected = true
      state.open += 1
      state.settled += 1
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      if (connected) state.open -= 1
      else state.settled += 1
    })
    // Reading (and discarding) is what lets this side see the relay's FIN.
    socket.resume()
  }
  return state
})
setInterval(() => process.stdout.write(`${JSON.stringify(states)}\n`), 100)
