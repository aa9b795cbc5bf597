// What an idle agent cannot go below on this stack (issue 11's "one idle agent process RSS" row): three Node
// processes that each hold one open gRPC-style stream to a local server and send a heartbeat every 5 s, doing
// nothing else, and their VmRSS (with RssAnon / RssFile) after 15 s:
//   bare       — Node itself, a timer, no connection: the binary's own pages and an empty heap;
//   raw-http2  — the stream over Node's own `http2` module, gRPC's framing written by hand;
//   grpc-js    — the same stream through @grpc/grpc-js (the decided gRPC library), nothing else loaded.
// `node bench/agent-floor.mjs [--json]`; FLOOR_ROUNDS=3, FLOOR_AT=15 (seconds). The agent itself is measured by
// `bench/agent-rss.mjs`; the difference between the two is what cmdop's own code and Effect cost.
import { spawn } from "node:child_process"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const grpcPath = createRequire(join(root, "packages", "grpc", "package.json")).resolve("@grpc/grpc-js")
const grpc = createRequire(import.meta.url)(grpcPath)
const rounds = Number(process.env.FLOOR_ROUNDS || 3)
const atSeconds = Number(process.env.FLOOR_AT || 15)

const identity = (b) => b
const chat = {
  path: "/floor.Floor/Chat",
  requestStream: true,
  responseStream: true,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity
}

// Each child prints its /proc/self/status figures (KiB) as one JSON line after `atSeconds`, then exits.
const report = `
const text = require("node:fs").readFileSync("/proc/self/status", "utf8")
const kib = (f) => Number(new RegExp("^" + f + ":\\\\s+(\\\\d+) kB", "m").exec(text)[1])
process.stdout.write(JSON.stringify({ rss: kib("VmRSS"), anon: kib("RssAnon"), file: kib("RssFile") }) + "\\n")
process.exit(0)`
const programs = {
  bare: `setInterval(() => {}, 5000)`,
  "raw-http2": `
const s = require("node:http2").connect("http://127.0.0.1:" + process.env.FLOOR_PORT)
const req = s.request({ ":method": "POST", ":path": "${chat.path}", "content-type": "application/grpc", te: "trailers" })
req.on("data", () => {})
const frame = (b) => { const f = Buffer.alloc(5 + b.length); f.writeUInt32BE(b.length, 1); b.copy(f, 5); return f }
req.write(frame(Buffer.from("hi")))
setInterval(() => req.write(frame(Buffer.from("hb"))), 5000)`,
  "grpc-js": `
const grpc = require(${JSON.stringify(grpcPath)})
const client = new grpc.Client("127.0.0.1:" + process.env.FLOOR_PORT, grpc.credentials.createInsecure())
const call = client.makeBidiStreamRequest("${chat.path}", (b) => b, (b) => b)
call.on("data", () => {})
call.on("error", () => {})
call.write(Buffer.from("hi"))
setInterval(() => call.write(Buffer.from("hb")), 5000)`
}

const measure = (name, port) =>
  new Promise((resolve, reject) => {
    const code = `${programs[name]}\nsetTimeout(() => {${report}}, ${atSeconds * 1000})`
    const child = spawn(process.execPath, ["-e", code], {
      env: { ...process.env, FLOOR_PORT: String(port) },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${name} exited ${code}`))))
  })

const server = new grpc.Server()
let streams = 0
server.addService({ chat }, { chat: (call) => (streams++, call.on("data", (d) => call.write(d))) })
const port = await new Promise((resolve, reject) =>
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)))
)
const results = {}
for (let round = 0; round < rounds; round++) {
  // All three at once, so they see the same machine; each is its own process.
  const figures = await Promise.all(Object.keys(programs).map((name) => measure(name, port)))
  Object.keys(programs).forEach((name, i) => (results[name] ??= []).push(figures[i]))
}
server.forceShutdown()
if (streams !== 2 * rounds) throw new Error(`expected ${2 * rounds} streams on the server, saw ${streams}`)
const mib = (kib) => (kib / 1024).toFixed(1)
if (process.argv.includes("--json")) process.stdout.write(JSON.stringify(results) + "\n")
else
  for (const [name, rows] of Object.entries(results))
    process.stdout.write(
      `${name.padEnd(10)} ${rows.map((r) => `${mib(r.rss)} MiB (anon ${mib(r.anon)}, file ${mib(r.file)})`).join("; ")}\n`
    )
