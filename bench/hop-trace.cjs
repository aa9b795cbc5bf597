// A preload for the benchmark's processes that records when each small message crosses a stream: every
// `Readable.push` and `Writable.write` of fewer than 200 bytes (keystrokes, exec starts and exits, acks), with
// CLOCK_MONOTONIC time in µs (the same clock in every process), the stream's class and, for HTTP/2 streams, which
// connection and stream. `bench/hop-trace.mjs` then lines the processes' records up into hops.
//
//   rm -f /tmp/hop-trace.*.json
//   NODE_OPTIONS="--require $PWD/bench/hop-trace.cjs" BENCH_SKIP_SSH=1 BENCH_PHASES=echo node bench/run.mjs
//   node bench/hop-trace.mjs echo
//
// Each process writes `$HOP_TRACE_DIR/hop-trace.<pid>.json` (default /tmp) every 500 ms once it has 500 records.
// It costs each message a clock read and an array push; figures taken with it are a little slower.
"use strict"
const { Readable, Writable, Duplex } = require("node:stream")
const fs = require("node:fs")
const path = require("node:path")

const dir = process.env.HOP_TRACE_DIR || "/tmp"
const records = []
const now = () => Number(process.hrtime.bigint()) / 1e3
const kind = (stream) => (stream.constructor && stream.constructor.name) || "?"
const tag = (stream) => {
  const session = stream.session
  if (!session || !session.socket) return ""
  return `${session.socket.remotePort ?? session.socket.localPort}/${stream.id}`
}
const small = (chunk) => chunk != null && chunk.length !== undefined && chunk.length < 200

const push = Readable.prototype.push
Readable.prototype.push = function (chunk, encoding) {
  if (small(chunk)) records.push([now(), "in", kind(this), chunk.length, tag(this)])
  return push.call(this, chunk, encoding)
}
const write = Writable.prototype.write
const traced = function (chunk, encoding, cb) {
  if (small(chunk)) records.push([now(), "out", kind(this), chunk.length, tag(this)])
  return write.call(this, chunk, encoding, cb)
}
Writable.prototype.write = traced
Duplex.prototype.write = traced

setInterval(() => {
  if (records.length < 500) return
  const file = path.join(dir, `hop-trace.${process.pid}.json`)
  fs.writeFileSync(file, JSON.stringify({ argv: process.argv.slice(1), records }))
}, 500).unref()
