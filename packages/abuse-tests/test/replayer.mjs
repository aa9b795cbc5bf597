// The replay attacker as its own process (as a real one would be), calling from its own address: `WhoAmI` with one
// credential, `count` times, one every `spacingMs`, up to 20 in flight, over plain HTTP/2 (gRPC's wire) from
// `localAddress` — grpc-js cannot pick the local address, and the relay limits refusals per source address.
// Prints {"codes":{code:n},"details":{code:"<first message>"},"seconds":s}.
import * as http2 from "node:http2"
import * as net from "node:net"

const [address, token, count, spacingMs, localAddress] = process.argv.slice(2)
const [host, port] = address.split(":")
const session = http2.connect(`http://${address}`, {
  createConnection: () => net.connect({ host, port: Number(port), localAddress })
})
session.on("error", () => {})
// An empty WhoAmIRequest: the 5-byte gRPC frame header, uncompressed, length 0.
const empty = Buffer.alloc(5)
const codes = {}
const details = {}
const started = performance.now()
const call = () =>
  new Promise((resolve) => {
    const stream = session.request({
      ":method": "POST",
      ":path": "/cmdop.connect.v1.ClientService/WhoAmI",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${token}`
    })
    let status = "unknown"
    let message = ""
    const take = (headers) => {
      if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"])
      if (headers["grpc-message"] !== undefined) message = decodeURIComponent(String(headers["grpc-message"]))
    }
    stream.on("response", take)
    stream.on("trailers", take)
    stream.on("data", () => {})
    stream.on("error", () => {})
    stream.on("close", () => {
      codes[status] = (codes[status] ?? 0) + 1
      if (details[status] === undefined) details[status] = message
      resolve()
    })
    stream.end(empty)
  })
let next = 0
const worker = async () => {
  while (next < Number(count)) {
    const i = next++
    const wait = started + i * Number(spacingMs) - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    await call()
  }
}
await Promise.all(Array.from({ length: 20 }, worker))
session.close()
process.stdout.write(JSON.stringify({ codes, details, seconds: (performance.now() - started) / 1000 }))
