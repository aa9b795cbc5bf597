// Lines up the records `bench/hop-trace.cjs` wrote into per-hop times of the bench's keystroke echo or warm exec:
// `node bench/hop-trace.mjs echo|exec [rounds]` (the last `rounds` matched, default 1000; $HOP_TRACE_DIR or /tmp).
// echo: client → relay → agent → PTY → agent → relay → client for each keystroke, with the median and p90 of each
// segment, and for the rounds over 1.5 ms which segment was the longest. exec: the sequence of every message of the
// last few calls, with the gap before each.
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

const [mode = "echo", lastArg = "1000"] = process.argv.slice(2)
const dir = process.env.HOP_TRACE_DIR || "/tmp"
const files = readdirSync(dir)
  .filter((f) => /^hop-trace\.\d+\.json$/.test(f))
  .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")))
const role = (d) => {
  const line = d.argv.join(" ")
  return line.includes("relay serve")
    ? "R"
    : line.includes("agent start")
      ? "A"
      : /echo|warm-exec/.test(line)
        ? "C"
        : "?"
}
const traced = files.filter((d) => role(d) !== "?" && d.records.length > 0)
if (!["R", "A", "C"].every((r) => traced.some((d) => role(d) === r))) {
  console.error(`hop-trace: need the records of a relay, an agent and a client in ${dir}; found ${traced.map(role)}`)
  process.exit(1)
}
const all = traced
  .flatMap((d) => d.records.map(([t, dir, kind, bytes, tag]) => ({ t, p: role(d), dir, kind, bytes, tag })))
  .sort((a, b) => a.t - b.t)
const from = Math.max(...traced.map((d) => d.records[0][0]))
const until = Math.min(...traced.map((d) => d.records.at(-1)[0]))
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]

if (mode === "exec") {
  const starts = all.filter((e) => e.p === "C" && e.dir === "out" && e.t < until)
  const first = starts.at(-6)?.t ?? from
  let previous = first
  for (const e of all) {
    if (e.t < first || e.t > until) continue
    const line = `${(e.t - first).toFixed(0).padStart(7)} +${(e.t - previous).toFixed(0).padStart(5)}`
    console.log(`${line} ${e.p} ${e.dir.padEnd(3)} ${e.kind} ${e.bytes} ${e.tag}`)
    previous = e.t
  }
  process.exit(0)
}

// The relay's stream with the agent is the busy one opened first.
const relayTags = [...new Set(all.filter((e) => e.p === "R").map((e) => e.tag))]
const busy = relayTags.filter((t) => all.filter((e) => e.p === "R" && e.tag === t).length > 100)
const opened = (t) => all.find((e) => e.p === "R" && e.tag === t).t
const agentTag = busy.sort((a, b) => opened(a) - opened(b))[0]
const steps = [
  ["C", "out", (e) => e.kind === "ClientHttp2Stream", "client sends"],
  ["R", "in", (e) => e.tag !== agentTag, "relay has it"],
  ["R", "out", (e) => e.tag === agentTag, "relay → agent"],
  ["A", "in", (e) => e.kind === "ClientHttp2Stream", "agent has it"],
  ["A", "out", (e) => e.kind !== "ClientHttp2Stream", "PTY written"],
  ["A", "in", (e) => e.kind !== "ClientHttp2Stream", "PTY echoed"],
  ["A", "out", (e) => e.kind === "ClientHttp2Stream", "agent → relay"],
  ["R", "in", (e) => e.tag === agentTag, "relay has it"],
  ["R", "out", (e) => e.tag !== agentTag, "relay → client"],
  ["C", "in", (e) => e.kind === "ClientHttp2Stream", "client has it"]
]
const rounds = []
for (let i = 0; i < all.length; i++) {
  const e = all[i]
  if (!(e.p === "C" && e.dir === "out" && e.t > from)) continue
  const times = [e.t]
  let j = i + 1
  for (let s = 1; j < all.length && s < steps.length; j++) {
    const x = all[j]
    const [p, dir, match] = steps[s]
    if (x.p === p && x.dir === dir && match(x)) {
      times.push(x.t)
      s++
    } else if (x.p === "C" && x.dir === "out") break
  }
  if (times.length === steps.length && times.at(-1) < until) rounds.push(times)
}
if (rounds.length === 0) {
  console.error("hop-trace: no keystroke round found (was the echo phase traced? `BENCH_PHASES=echo`)")
  process.exit(1)
}
const last = rounds.slice(-Number(lastArg))
console.log(`${rounds.length} rounds matched; the last ${last.length}:`)
for (let s = 1; s < steps.length; s++) {
  const d = last.map((r) => r[s] - r[s - 1])
  const name = `${steps[s - 1][3]} → ${steps[s][3]}`
  console.log(
    `  ${name.padEnd(34)} median ${median(d).toFixed(0).padStart(5)} µs   p90 ${p90(d).toFixed(0).padStart(5)} µs`
  )
}
const totals = last.map((r) => r.at(-1) - r[0])
console.log(
  `  ${"round trip".padEnd(34)} median ${median(totals).toFixed(0).padStart(5)} µs   p90 ${p90(totals).toFixed(0).padStart(5)} µs`
)
const slow = last.filter((r) => r.at(-1) - r[0] > 1500)
const longest = {}
for (const r of slow) {
  let worst = 1
  for (let s = 2; s < steps.length; s++) if (r[s] - r[s - 1] > r[worst] - r[worst - 1]) worst = s
  const name = `${steps[worst - 1][3]} → ${steps[worst][3]}`
  longest[name] = (longest[name] ?? 0) + 1
}
console.log(`rounds over 1.5 ms: ${slow.length}; their longest segment:`, longest)
