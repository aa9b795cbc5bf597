// The `cluster` phase of bench/run.mjs: runs bench/cluster.mjs (three relay nodes on PostgreSQL) as a child process
// in its own group, and turns its JSON into rows of run.mjs's table. Without PostgreSQL the rows say "unavailable"
// and why, as the OpenSSH column does.
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const script = join(dirname(fileURLToPath(import.meta.url)), "cluster.mjs")

/**
 * Runs the cluster benchmark with `agents` simulated agents; resolves with its results (`available: false` and a
 * reason when PostgreSQL is unreachable or the run failed). `track(pid, name)` / `untrack(pid)` let the caller
 * stop it (its group) on a timeout or Ctrl-C; it then stops its own nodes and drops its database.
 */
export const runCluster = ({ agents, tmp, env, track, untrack, timeoutMs }) =>
  new Promise((resolve) => {
    const jsonPath = join(tmp, "cluster.json")
    // BENCH_CLUSTER_ARGS: more flags of cluster.mjs, e.g. "--latency-runs 100 --throughput-mb 50".
    const extra = (env.BENCH_CLUSTER_ARGS ?? "").split(/\s+/).filter((a) => a !== "")
    const child = spawn(process.execPath, [script, "--agents", String(agents), ...extra, "--json", jsonPath], {
      // The caller's CMDOP_* variables are kept from the benchmark, but for the database to use.
      env: process.env.CMDOP_BENCH_PG === undefined ? env : { ...env, CMDOP_BENCH_PG: process.env.CMDOP_BENCH_PG },
      stdio: ["ignore", "ignore", "inherit"],
      detached: true
    })
    track(child.pid, "cluster")
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGTERM")
      } catch {}
    }, timeoutMs)
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      untrack(child.pid)
      if (code === 0 && existsSync(jsonPath)) resolve(JSON.parse(readFileSync(jsonPath, "utf8")))
      else
        resolve({
          available: false,
          reason: signal ? `stopped (${signal}) after ${timeoutMs / 1000} s` : `bench/cluster.mjs failed (exit ${code})`
        })
    })
  })

const ms = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))
const signed = (x) => `${x >= 0 ? "+" : ""}${ms(x)}`
const mb = (bytes) => `${(bytes / 1).toFixed(0)}`

/** Rows `[label, cmdop, ""]` for run.mjs's table. */
export const clusterRows = (c) => {
  if (c === undefined) return []
  if (!c.available) return [["cluster (3 relay nodes on PostgreSQL)", `unavailable (${c.reason})`, ""]]
  const rows = []
  const idle = c.idle
  if (idle !== undefined) {
    rows.push([
      `cluster: idle agents over 3 nodes (${idle.requested})`,
      `${idle.connected} online in ${idle.connectSeconds.toFixed(0)} s (${idle.connectPerSecond.toFixed(0)}/s), ` +
        `relay RSS ${idle.rssPerAgentKB === undefined ? "-" : idle.rssPerAgentKB.toFixed(0)} KiB/agent`,
      ""
    ])
    // Why attempts failed or streams ended (summed over the simulators), the most frequent first.
    const reasons = Object.entries(idle.reasons ?? {}).reduce((all, [why, n]) => {
      const key = why.replace(/127\.0\.0\.1:\d+/g, "<node>").slice(0, 90)
      all.set(key, (all.get(key) ?? 0) + n)
      return all
    }, new Map())
    const top = [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 3)
    rows.push([
      "  failed attempts, ended streams (top reasons)",
      `${idle.failures} failed${top.length === 0 ? "" : `; ${top.map(([why, n]) => `${n}× ${why}`).join("; ")}`}`,
      ""
    ])
    rows.push([
      "  node RSS before → after (MB)",
      idle.rssBeforeMB.map((b, i) => `${mb(b)} → ${mb(idle.rssAfterMB[i])}`).join(", "),
      ""
    ])
  }
  const l = c.latency
  rows.push([
    `cluster: exec p50 local / forwarded (n=${l.runs})`,
    `${ms(l.localP50)} / ${ms(l.forwardedP50)} ms, added ${signed(l.addedP50)} ms (goal ≤ 1)`,
    ""
  ])
  rows.push([
    "  relay round trip p50 local / forwarded",
    `${ms(c.relayRoundTrip.localP50)} / ${ms(c.relayRoundTrip.forwardedP50)} ms, added ${signed(c.relayRoundTrip.addedP50)} ms`,
    ""
  ])
  rows.push([
    "  CPU per exec: local / forwarded owner + front",
    `${ms(l.cpuPerExecMs.localOwner)} / ${ms(l.cpuPerExecMs.forwardedOwner)} + ${ms(l.cpuPerExecMs.forwardedFront)} ms`,
    ""
  ])
  const t = c.throughput
  rows.push([
    `cluster: throughput local / forwarded (${t.bytes / 1e6} MB)`,
    `${t.localMBps.toFixed(1)} / ${t.forwardedMBps.toFixed(1)} MB/s, ratio ${t.ratio.toFixed(2)}× (goal ≥ 0.8)`,
    ""
  ])
  rows.push([
    "  CPU per MB: local / forwarded owner + front",
    `${ms(t.cpuPerMbMs.localOwner)} / ${ms(t.cpuPerMbMs.forwardedOwner)} + ${ms(t.cpuPerMbMs.forwardedFront)} ms`,
    ""
  ])
  const f = c.failover
  if (f !== undefined) {
    rows.push([
      `cluster: kill -9 of ${f.killed} (${f.agentsOnKilledNode} agents)`,
      `${f.allBack ? "all back" : "NOT all back"} in ${f.backSeconds.toFixed(1)} s, ` +
        `peak ${f.peakPer500ms} connects / 500 ms`,
      ""
    ])
    rows.push(["  connects per 500 ms after the kill", f.rate.map((r) => r.connects).join(" "), ""])
  }
  return rows
}
