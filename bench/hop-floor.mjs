// What one more relay node costs an exec when nothing but grpc-js does the work: the floor under issue 14's
// "added latency of a forwarded exec (goal: ≤ 1 ms at p50)". Four plain grpc-js processes shaped like a cluster:
//   agent  — holds one long bidi stream to the owner (as an agent does) and answers every message on it at once;
//   owner  — serves that stream and an `Exec` method: a call's first message goes down the agent's stream, and the
//            agent's answer is the call's one answer, then its end (an exec of `true`, without the process);
//   front  — serves the same `Exec` by opening a new call to the owner's `Exec` per call (as a forwarding node opens
//            a peer call) and passing the answer and the end back;
//   client — calls `Exec` in a loop, a new call each time (as `connect exec` does), timing each until its status.
// Rounds alternate between the owner (local) and the front (forwarded); p50s, their difference, and the CPU of each
// process per call. No Effect, no protobuf, no auth: only the transport and Node's event loops.
// `FLOOR_PEER` picks how the front reaches the owner (the client's side stays grpc-js):
//   grpc       — a grpc-js client to the owner's grpc-js server (the default);
//   raw-client — a plain `node:http2` client writing gRPC frames to that grpc-js server (what a relay node's
//                passthrough does, `@cmdop/grpc/GrpcPassthrough`);
//   raw        — the same client to a plain `node:http2` server on the owner answering gRPC frames itself (the
//                floor of a peer link with no grpc-js on either end).
// `node bench/hop-floor.mjs [--json]`; FLOOR_CALLS=300 per round, FLOOR_ROUNDS=6, FLOOR_WARMUP=300.
import { spawn } from "node:child_process"
import * as http2 from "node:http2"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const grpcPath = createRequire(join(root, "packages", "grpc", "package.json")).resolve("@grpc/grpc-js")
const grpc = createRequire(import.meta.url)(grpcPath)
const self = fileURLToPath(import.meta.url)

const identity = (b) => b
const method = (path) => ({
  path,
  requestStream: true,
  responseStream: true,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity
})
const LINK = method("/floor.Owner/Link")
const EXEC = method("/floor.Owner/Exec")
const insecure = () => grpc.ServerCredentials.createInsecure()

const listen = (handlers) =>
  new Promise((resolve, reject) => {
    const server = new grpc.Server()
    server.addService(Object.fromEntries(Object.keys(handlers).map((k) => [k, k === "link" ? LINK : EXEC])), handlers)
    server.bindAsync("127.0.0.1:0", insecure(), (e, port) => (e ? reject(e) : resolve(port)))
  })

const cpuMs = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const PEER = process.env.FLOOR_PEER || "grpc"
if (!["grpc", "raw-client", "raw"].includes(PEER)) {
  process.stderr.write(`hop-floor: FLOOR_PEER must be grpc, raw-client or raw, not ${PEER}\n`)
  process.exit(2)
}

/** One gRPC message as it goes on the wire: not compressed, its length, the bytes. */
const frame = (message) => {
  const framed = Buffer.allocUnsafe(5 + message.length)
  framed[0] = 0
  framed.writeUInt32BE(message.length, 1)
  message.copy(framed, 5)
  return framed
}

const roles = {
  // The owner: prints its port, then serves the agent's stream and execs.
  owner: async () => {
    let agent
    const waiting = new Map()
    let next = 0
    const port = await listen({
      link: (call) => {
        agent = call
        call.on("data", (b) => {
          const id = b.readUInt32BE(0)
          const exec = waiting.get(id)
          waiting.delete(id)
          if (exec) {
            exec.write(b)
            exec.end()
          }
        })
      },
      exec: (call) => {
        call.once("data", (start) => {
          const id = next++ >>> 0
          waiting.set(id, call)
          const message = Buffer.allocUnsafe(4 + start.length)
          message.writeUInt32BE(id, 0)
          start.copy(message, 4)
          agent.write(message)
        })
        call.on("data", () => {})
        call.on("error", () => {})
      }
    })
    // The same `Exec` on plain HTTP/2: its first DATA chunk is the start (one small message), the answer one frame,
    // the status in trailers.
    const raw = http2.createServer()
    raw.on("stream", (stream) => {
      stream.once("data", (chunk) => {
        const start = chunk.subarray(5)
        const id = next++ >>> 0
        waiting.set(id, {
          write: (b) => {
            stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true })
            stream.write(frame(b))
          },
          end: () => stream.end()
        })
        stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }))
        const message = Buffer.allocUnsafe(4 + start.length)
        message.writeUInt32BE(id, 0)
        start.copy(message, 4)
        agent.write(message)
      })
      stream.on("data", () => {})
      stream.on("error", () => {})
    })
    await new Promise((resolve) => raw.listen(0, "127.0.0.1", resolve))
    process.stdout.write(`${port},${raw.address().port}\n`)
  },
  agent: async (ownerPort) => {
    const client = new grpc.Client(`127.0.0.1:${ownerPort}`, grpc.credentials.createInsecure())
    const call = client.makeBidiStreamRequest(LINK.path, identity, identity)
    call.on("data", (b) => call.write(b))
    call.on("error", () => process.exit(1))
    call.write(Buffer.alloc(4))
    process.stdout.write("ready\n")
  },
  front: async (ownerPort, rawPort) => {
    const peer = new grpc.Client(`127.0.0.1:${ownerPort}`, grpc.credentials.createInsecure())
    const session = http2.connect(`http://127.0.0.1:${PEER === "raw" ? rawPort : ownerPort}`)
    const port = await listen({
      exec: (call) => {
        call.once("data", (start) => {
          if (PEER !== "grpc") {
            const request = session.request({
              ":method": "POST",
              ":path": EXEC.path,
              "content-type": "application/grpc",
              te: "trailers"
            })
            request.on("data", (chunk) => call.write(chunk.subarray(5)))
            request.on("trailers", () => call.end())
            request.on("error", () => {})
            request.end(frame(start))
            return
          }
          const forwarded = peer.makeBidiStreamRequest(EXEC.path, identity, identity)
          forwarded.on("data", (b) => call.write(b))
          forwarded.on("status", () => call.end())
          forwarded.on("error", () => {})
          forwarded.write(start)
          forwarded.end()
        })
        call.on("data", () => {})
        call.on("error", () => {})
      }
    })
    process.stdout.write(`${port}\n`)
  },
  // One round: `n` execs against `port`, each timed until its status; prints the samples (ms).
  client: async (localPort, frontPort, n, warmup, rounds) => {
    const clients = {
      local: new grpc.Client(`127.0.0.1:${localPort}`, grpc.credentials.createInsecure()),
      forwarded: new grpc.Client(`127.0.0.1:${frontPort}`, grpc.credentials.createInsecure())
    }
    const once = (client) =>
      new Promise((resolve, reject) => {
        const t0 = performance.now()
        const call = client.makeBidiStreamRequest(EXEC.path, identity, identity)
        let answered = false
        call.on("data", () => (answered = true))
        call.on("status", (s) =>
          s.code === 0 && answered ? resolve(performance.now() - t0) : reject(new Error(`status ${s.code}`))
        )
        call.on("error", () => {})
        call.write(Buffer.from("true"))
        call.end()
      })
    const run = async (where, count) => {
      const samples = []
      for (let i = 0; i < count; i++) samples.push(await once(clients[where]))
      return samples
    }
    await run("local", warmup)
    await run("forwarded", warmup)
    const pids = { ...JSON.parse(process.env.FLOOR_PIDS), client: process.pid }
    const result = { local: [], forwarded: [], cpu: { local: {}, forwarded: {} } }
    for (let r = 0; r < rounds; r++) {
      for (const where of r % 2 === 0 ? ["local", "forwarded"] : ["forwarded", "local"]) {
        const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid)]))
        result[where].push(...(await run(where, n)))
        for (const [k, pid] of Object.entries(pids))
          result.cpu[where][k] = (result.cpu[where][k] ?? 0) + cpuMs(pid) - before[k]
      }
    }
    process.stdout.write(JSON.stringify(result) + "\n")
    process.exit(0)
  }
}

const role = process.argv[2]
if (role in roles) {
  await roles[role](...process.argv.slice(3))
} else {
  const calls = Number(process.env.FLOOR_CALLS || 300)
  const rounds = Number(process.env.FLOOR_ROUNDS || 6)
  const warmup = Number(process.env.FLOOR_WARMUP || 300)
  const children = []
  const start = (args) =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [self, ...args], { stdio: ["ignore", "pipe", "inherit"] })
      children.push(child)
      let out = ""
      child.stdout.on("data", (d) => {
        out += d
        const line = out.indexOf("\n")
        if (line >= 0) resolve({ child, first: out.slice(0, line) })
      })
      child.on("exit", (code) => reject(new Error(`${args[0]} exited ${code}`)))
    })
  try {
    const owner = await start(["owner"])
    const [ownerPort, rawPort] = owner.first.split(",")
    const agent = await start(["agent", ownerPort])
    const front = await start(["front", ownerPort, rawPort])
    const pids = { front: front.child.pid, owner: owner.child.pid, agent: agent.child.pid }
    const child = spawn(
      process.execPath,
      [self, "client", ownerPort, front.first, String(calls), String(warmup), String(rounds)],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, FLOOR_PIDS: JSON.stringify(pids) } }
    )
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    await new Promise((resolve) => child.on("exit", resolve))
    const result = JSON.parse(out)
    const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]
    const n = calls * rounds
    const per = (where) =>
      Object.fromEntries(Object.entries(result.cpu[where]).map(([k, ms]) => [k, +(ms / n).toFixed(3)]))
    const summary = {
      peer: PEER,
      calls: n,
      localP50: +p50(result.local).toFixed(3),
      forwardedP50: +p50(result.forwarded).toFixed(3),
      addedP50: +(p50(result.forwarded) - p50(result.local)).toFixed(3),
      cpuMsPerCall: { local: per("local"), forwarded: per("forwarded") }
    }
    process.stdout.write(
      process.argv.includes("--json") ? JSON.stringify(summary) + "\n" : JSON.stringify(summary, null, 2) + "\n"
    )
  } finally {
    for (const child of children) child.kill("SIGKILL")
  }
}
