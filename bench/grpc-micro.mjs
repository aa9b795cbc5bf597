// Micro-benchmark of the gRPC bridge: messages/s and CPU per message through one loopback bidi echo call, raw
// grpc-js vs @cmdop/grpc, each run in a fresh process, the two sides interleaved. See bench/README.md.
// `node bench/grpc-micro.mjs [--json]`; knobs: MICRO_N (messages, default 100000), MICRO_SIZES (bytes per message,
// default "64,32768"), MICRO_ROUNDS (default 3), MICRO_CPU_PROF (a directory: runs with `node --cpu-prof` there),
// MICRO_GRPC_OPTIONS (extra grpc-js channel options as JSON, both sides), MICRO_KIND=calls (per call instead: `n`
// short calls of one message each way, the shape of an exec).
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { bundleTools } from "./bundleTools.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const n = Number(process.env.MICRO_N || 100_000)
const sizes = (process.env.MICRO_SIZES || "64,32768").split(",").map(Number)
const rounds = Number(process.env.MICRO_ROUNDS || 3)
const profDir = process.env.MICRO_CPU_PROF || undefined
const asJson = process.argv.includes("--json")
const unit = process.env.MICRO_KIND === "calls" ? "call" : process.env.MICRO_KIND === "pingpong" ? "round" : "msg"

// With MICRO_CPU_PROF the bundle is kept next to the profiles, so `cpuprof-top.mjs` can attribute its lines.
const tmp = profDir ?? mkdtempSync(join(tmpdir(), "cmdop-micro-"))
try {
  await bundleTools({
    entryPoints: { "grpc-micro": "bench/grpc-micro.ts" },
    outdir: tmp,
    packages: ["protocol", "grpc"]
  })

  const runOnce = (mode, size, round) => {
    const prof =
      profDir === undefined
        ? []
        : ["--cpu-prof", "--cpu-prof-dir", profDir, "--cpu-prof-name", `${mode}-${size}-${round}.cpuprofile`]
    const result = spawnSync(process.execPath, [...prof, join(tmp, "grpc-micro.mjs"), mode, String(n), String(size)], {
      encoding: "utf8"
    })
    if (result.status !== 0) throw new Error(`${mode} ${size}: ${result.stderr.trim()}`)
    return JSON.parse(result.stdout)
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

  const rows = []
  for (const size of sizes) {
    const runs = { raw: [], cmdop: [] }
    for (let round = 0; round < rounds; round++)
      for (const mode of ["raw", "cmdop"]) {
        const r = runOnce(mode, size, round)
        runs[mode].push(r)
        process.stderr.write(
          `micro: ${mode} ${size} B: ${((n / r.ms) * 1000).toFixed(0)} ${unit}/s, ${((r.cpuMs * 1000) / n).toFixed(2)} µs CPU/${unit}\n`
        )
      }
    const summary = (mode) => ({
      msgPerS: median(runs[mode].map((r) => (n / r.ms) * 1000)),
      cpuUsPerMsg: median(runs[mode].map((r) => (r.cpuMs * 1000) / n)),
      mbPerS: median(runs[mode].map((r) => (n * size) / 1e6 / (r.ms / 1000)))
    })
    const raw = summary("raw")
    const cmdop = summary("cmdop")
    // Ratios of medians, and the median of the per-round ratios (each round runs both sides back to back).
    const roundRatio = (f) => median(runs.raw.map((r, i) => f(r, runs.cmdop[i])))
    rows.push({
      size,
      raw,
      cmdop,
      cpuRatio: roundRatio((r, c) => c.cpuMs / r.cpuMs),
      rateRatio: roundRatio((r, c) => r.ms / c.ms)
    })
  }

  if (asJson) process.stdout.write(JSON.stringify({ n, rounds, rows }, null, 2) + "\n")
  else {
    process.stdout.write(
      unit === "call"
        ? `bidi calls of one message each way, ${n} one after another, median of ${rounds} interleaved rounds\n\n`
        : unit === "round"
          ? `bidi ping-pong, ${n} rounds of one message each way on one call, median of ${rounds} interleaved rounds\n\n`
          : `bidi echo, ${n} messages each way, median of ${rounds} interleaved rounds\n\n`
    )
    process.stdout.write(
      `| size | raw grpc-js ${unit}/s | @cmdop/grpc ${unit}/s | rate ratio | raw µs CPU/${unit} | cmdop µs CPU/${unit} | CPU ratio |\n`
    )
    process.stdout.write("|---|---|---|---|---|---|---|\n")
    for (const r of rows)
      process.stdout.write(
        `| ${r.size} B | ${r.raw.msgPerS.toFixed(0)} | ${r.cmdop.msgPerS.toFixed(0)} | ${r.rateRatio.toFixed(2)} | ${r.raw.cpuUsPerMsg.toFixed(2)} | ${r.cmdop.cpuUsPerMsg.toFixed(2)} | ${r.cpuRatio.toFixed(2)}× |\n`
      )
  }
} finally {
  if (profDir === undefined) rmSync(tmp, { recursive: true, force: true })
}
