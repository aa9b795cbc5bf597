// The victim tenant as its own process: one HTTP/2 connection to the relay (as a gRPC channel keeps one), and for
// each line "<n>" on stdin, n sequential `exec <machine> -- true` calls; prints one JSON line per batch,
// {"samples":[ms…]} or {"error":"…"}. Its own process (at normal priority) so that what the test process does —
// drive in-process attacks, parse, assert — never delays the victim's calls: only the relay under attack may.
// The gRPC messages are written by hand (ExecRequest{start: ExecStart{machine, argv}}) to keep it plain JS.
import * as http2 from "node:http2"
import * as readline from "node:readline"

const [address, apiKey, machine] = process.argv.slice(2)
const session = http2.connect(`http://${address}`)
session.on("error", (e) => {
  process.stdout.write(`${JSON.stringify({ error: `connection: ${e.message}` })}\n`)
  process.exit(1)
})

const varint = (n) => {
  const out = []
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return Buffer.from(out)
}
const field = (tag, bytes) => Buffer.concat([varint(tag), varint(bytes.length), bytes])
const text = (tag, s) => field(tag, Buffer.from(s, "utf8"))
const frame = (message) => {
  const header = Buffer.alloc(5)
  header.writeUInt32BE(message.length, 1)
  return Buffer.concat([header, message])
}
// ExecRequest.start (1) = ExecStart { machine (1), argv (2) }
const start = frame(field(0x0a, Buffer.concat([text(0x0a, machine), text(0x12, "true")])))

/** Reads varints and length-delimited fields of one message: field number → last value. */
const fields = (buf) => {
  const out = new Map()
  let i = 0
  const readVarint = () => {
    let n = 0
    let shift = 0
    for (;;) {
      const b = buf[i++]
      n += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return n
      shift += 7
    }
  }
  while (i < buf.length) {
    const tag = readVarint()
    if ((tag & 7) === 0) out.set(tag >>> 3, readVarint())
    else if ((tag & 7) === 2) {
      const len = readVarint()
      out.set(tag >>> 3, buf.subarray(i, i + len))
      i += len
    } else throw new Error(`unexpected wire type ${tag & 7}`)
  }
  return out
}

/** One exec: resolves with how many ms it took, rejects unless the command exited 0. */
const execOnce = () =>
  new Promise((resolve, reject) => {
    const t0 = performance.now()
    const stream = session.request({
      ":method": "POST",
      ":path": "/cmdop.connect.v1.ClientService/Exec",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${apiKey}`
    })
    let pending = Buffer.alloc(0)
    let exit
    let status = "none"
    let message = ""
    stream.on("data", (chunk) => {
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const event = fields(pending.subarray(5, 5 + pending.readUInt32BE(1)))
        pending = pending.subarray(5 + pending.readUInt32BE(1))
        // ExecEvent.exit (4) = ExecExit { exit_code (1), error (4) }
        if (event.has(4)) exit = fields(event.get(4))
      }
    })
    const take = (headers) => {
      if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"])
      if (headers["grpc-message"] !== undefined) message = decodeURIComponent(String(headers["grpc-message"]))
    }
    stream.on("response", take)
    stream.on("trailers", (headers) => {
      take(headers)
      stream.end()
    })
    stream.on("error", (e) => reject(e))
    stream.on("close", () => {
      const ms = performance.now() - t0
      if (status === "0" && exit !== undefined && (exit.get(1) ?? 0) === 0) resolve(ms)
      else reject(new Error(`exec failed: status ${status} ${message}, exit ${JSON.stringify([...(exit ?? [])])}`))
    })
    stream.write(start)
  })

const lines = readline.createInterface({ input: process.stdin })
for await (const line of lines) {
  const samples = []
  try {
    for (let i = 0; i < Number(line); i++) samples.push(await execOnce())
    process.stdout.write(`${JSON.stringify({ samples })}\n`)
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ error: String(e) })}\n`)
  }
}
session.close()
