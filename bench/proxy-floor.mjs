#!/usr/bin/env node
// The floor under a forwarding node's CPU per MB: a plain `node:http2` proxy, no gRPC and no Effect. A source process
// writes `PROXY_MB` MB (default 300) in 256 KiB writes on one HTTP/2 stream; a proxy process reads it as an HTTP/2
// client (1 MiB stream window, as `@cmdop/grpc/GrpcPassthrough` does) and writes each chunk it gets to its own
// client's stream (pausing the upstream past 256 KiB queued, as the passthrough does); this process reads it. Each
// round is a fresh proxy: MB/s and the proxy's CPU per MB (`process.cpuUsage`), per chunk (`plain`) and with the
// chunks of one tick written together (`cork`: `cork()` at the first, `uncork()` on the next tick).
// `node bench/proxy-floor.mjs` (PROXY_MB, PROXY_ROUNDS=3 pairs).
import { fork } from "node:child_process"
import * as http2 from "node:http2"
import { fileURLToPath } from "node:url"

const self = fileURLToPath(import.meta.url)
const MB = Number(process.env.PROXY_MB || 300)
const ROUNDS = Number(process.env.PROXY_ROUNDS || 3)
const [role, ...args] = process.argv.slice(2)

const listen = (server) => server.listen(0, "127.0.0.1", () => process.send(server.address().port))

if (role === "source") {
  const server = http2.createServer()
  server.on("stream", (stream) => {
    stream.respond({ ":status": 200 })
    const buffer = Buffer.alloc(256 * 1024, 1)
    let left = MB * 4
    const go = () => {
      while (left > 0) {
        left--
        if (!stream.write(buffer)) return stream.once("drain", go)
      }
      stream.end()
    }
    go()
  })
  listen(server)
} else if (role === "proxy") {
  const [mode, sourcePort] = args
  const upstream = http2.connect(`http://127.0.0.1:${sourcePort}`, { settings: { initialWindowSize: 1 << 20 } })
  const server = http2.createServer()
  server.on("stream", (down) => {
    down.respond({ ":status": 200 })
    const up = upstream.request({ ":path": "/" })
    let corked = false
    up.on("data", (chunk) => {
      if (mode === "cork" && !corked) {
        corked = true
        down.cork()
        process.nextTick(() => {
          corked = false
          down.uncork()
        })
      }
      if (!down.write(chunk) && down.writableLength >= 256 * 1024) {
        up.pause()
        down.once("drain", () => up.resume())
      }
    })
    up.on("end", () => down.end())
  })
  listen(server)
  process.on("message", () => {
    const used = process.cpuUsage()
    process.send((used.user + used.system) / 1000)
  })
} else {
  const next = (child) => new Promise((resolve) => child.once("message", resolve))
  const source = fork(self, ["source"])
  const sourcePort = await next(source)
  const rows = []
  for (let r = 0; r < ROUNDS; r++)
    for (const mode of r % 2 === 0 ? ["plain", "cork"] : ["cork", "plain"]) {
      const proxy = fork(self, ["proxy", mode, String(sourcePort)])
      const port = await next(proxy)
      const client = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 8 << 20 } })
      const cpu = async () => {
        const answer = next(proxy)
        proxy.send(0)
        return answer
      }
      const before = await cpu()
      const t0 = performance.now()
      const request = client.request({ ":path": "/" })
      let bytes = 0
      request.on("data", (d) => (bytes += d.length))
      await new Promise((resolve) => request.on("end", resolve))
      const seconds = (performance.now() - t0) / 1000
      const cpuPerMb = ((await cpu()) - before) / (bytes / 1e6)
      rows.push({ mode, mbps: +(bytes / 1e6 / seconds).toFixed(1), proxyCpuMsPerMb: +cpuPerMb.toFixed(3) })
      client.close()
      proxy.kill()
    }
  source.kill()
  process.stdout.write(JSON.stringify(rows) + "\n")
}
