// Reproduces a stall outside @cmdop/grpc: plain grpc-js, 8 MiB HTTP/2 windows (as channelOptions.ts sets them), a
// bidi echo of two 4 MiB messages (together over the window), both ends reading in paused mode ('readable' +
// read(), as nodeStream.ts does). Within 60 calls one sometimes never completes. With 'data' events (flowing mode)
// or without the window tuning it has not stalled here. `node bench/grpc-stall-repro.mjs [tune]`: prints "ok 60" or
// the call that stalled (exit 1).
import { createRequire } from "node:module"
const require = createRequire(new URL("../packages/grpc/package.json", import.meta.url))
const grpc = require("@grpc/grpc-js")
const tune = process.argv[2] === "tune"
const W = 8 * 1024 * 1024
const id = (b) => b
const def = {
  chat: {
    path: "/t.T/Chat",
    requestStream: true,
    responseStream: true,
    requestSerialize: id,
    requestDeserialize: id,
    responseSerialize: id,
    responseDeserialize: id
  }
}
const opts = {
  "grpc.max_send_message_length": 32 << 20,
  "grpc.max_receive_message_length": 32 << 20,
  ...(tune ? { "grpc-node.flow_control_window": W } : {})
}
const server = new grpc.Server(opts)
if (tune) server.commonServerOptions.settings = { ...server.commonServerOptions.settings, initialWindowSize: W }
server.addService(def, {
  chat: (call) => {
    call.on("readable", () => {
      let m
      while ((m = call.read()) !== null) call.write(m)
    })
    call.on("end", () => call.end())
  }
})
const port = await new Promise((res, rej) =>
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p)))
)
if (tune) for (const h of server.http2Servers.keys()) h.on("session", (s) => s.setLocalWindowSize(W))
const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), opts)
const data = Buffer.alloc(4 * 1024 * 1024)
for (let i = 0; i < 60; i++) {
  const n = await Promise.race([
    new Promise((resolve, reject) => {
      const call = client.makeBidiStreamRequest(def.chat.path, id, id)
      let k = 0
      call.on("readable", () => {
        while (call.read() !== null) k++
      })
      call.on("error", reject)
      call.on("end", () => resolve(k))
      call.write(data)
      call.write(data)
      call.end()
    }),
    new Promise((r) => setTimeout(() => r("hang"), 5000))
  ])
  if (n !== 2) {
    console.log(`iteration ${i}: ${n}`)
    process.exit(1)
  }
}
console.log("ok 60")
process.exit(0)
