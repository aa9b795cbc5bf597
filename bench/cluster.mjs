#!/usr/bin/env node
// The cluster benchmark: three relay nodes (bench/cluster-node.ts) on one fresh PostgreSQL database, a real agent
// on node 1, and many simulated idle agents spread over the three (bench/cluster-sims.ts, each given all three
// nodes like `cmdop agent start --server a,b,c`). It measures
//  - relay RSS per idle agent (the nodes' RSS before and after the agents, over the agents' count);
//  - exec latency through node 1 (local) and node 2 (forwarded to node 1 over the peer port), p50 and p90, and the
//    added latency of forwarding at p50 (goal ≤ 1 ms);
//  - the relay's own round trip (`listSessions`, no process started) local and forwarded: what a hop adds;
//  - exec throughput (`head -c` of /dev/zero) local and forwarded, and their ratio (goal ≥ 0.8×);
//  - after `kill -9` of node 2: the time until every agent is online again through the other nodes, with the
//    connection rate per 500 ms (no thundering herd: the agents' backoff has full jitter).
// Usage: node bench/cluster.mjs [--agents N] [--per-process N] [--latency-runs N] [--throughput-mb N] [--json FILE]
// Needs PostgreSQL at postgres://postgres@127.0.0.1:5432 (CMDOP_BENCH_PG to override) and `psql`.
import { spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const argv = process.argv.slice(2)
const flag = (name, fallback) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback
}
const AGENTS = Number(flag("agents", "10000"))
const LATENCY_RUNS = Number(flag("latency-runs", "300"))
const THROUGHPUT_MB = Number(flag("throughput-mb", "200"))
const jsonOut = flag("json", undefined)
const pgBase = process.env["CMDOP_BENCH_PG"] ?? "postgres://postgres@127.0.0.1:5432"

const tmp = mkdtempSync(join(tmpdir(), "cmdop-cluster-bench-"))
const log = (line) => process.stderr.write(`[cluster] ${line}\n`)
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CMDOP_")))
const secret = randomBytes(36).toString("base64url")
const database = `cmdop_bench_${randomBytes(5).toString("hex")}`
const running = new Map()

const psql = (sql, db = "postgres") => {
  const r = spawnSync("psql", [`${pgBase}/${db}`, "-tAc", sql], { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`psql: ${r.stderr.trim()}`)
  return r.stdout.trim()
}

const cleanup = () => {
  for (const [pid] of running) {
    try {
      process.kill(-pid, "SIGKILL")
    } catch {}
  }
  running.clear()
  try {
    psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
  } catch (e) {
    log(`could not drop ${database}: ${e.message}`)
  }
  rmSync(tmp, { recursive: true, force: true })
}
process.on("SIGINT", () => {
  cleanup()
  process.exit(130)
})

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })

/** A long-lived process in its own group; its stdout lines go to `onLine`, stderr to `<tmp>/<name>.log`. */
const startProcess = (name, args, { env = baseEnv, onLine = () => {} } = {}) => {
  const fd = openSync(join(tmp, `${name}.log`), "a")
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ["pipe", "pipe", fd], detached: true })
  closeSync(fd)
  running.set(child.pid, name)
  child.on("exit", () => running.delete(child.pid))
  createInterface({ input: child.stdout }).on("line", onLine)
  return child
}

/** The first stdout line of a fresh process, as JSON. */
const firstLine = (name, args, options = {}) =>
  new Promise((resolve, reject) => {
    let done = false
    const child = startProcess(name, args, {
      ...options,
      onLine: (line) => {
        if (!done) {
          done = true
          resolve({ child, value: JSON.parse(line) })
        }
        options.onLine?.(line)
      }
    })
    child.on("exit", (code) => {
      if (!done)
        reject(new Error(`${name} exited (${code}): ${readFileSync(join(tmp, `${name}.log`), "utf8").slice(-800)}`))
    })
  })

const rssOf = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return m ? Number(m[1]) * 1024 : 0
}

const quantile = (samples, q) => {
  const s = [...samples].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]
}

const runTool = (args, env = baseEnv, timeoutMs = 300_000) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout.on("data", (c) => (out += c))
    child.stderr.on("data", (c) => (err += c))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("close", (code) => {
      clearTimeout(timer)
      code === 0 ? resolve(JSON.parse(out.trim().split("\n").at(-1))) : reject(new Error(err.trim() || `exit ${code}`))
    })
  })

const bundle = async () => {
  const { build } = await import("esbuild")
  const outdir = join(tmp, "tools")
  await build({
    absWorkingDir: root,
    entryPoints: {
      "cluster-node": "bench/cluster-node.ts",
      "cluster-sims": "bench/cluster-sims.ts",
      "warm-exec": "bench/warm-exec.ts",
      "cluster-rtt": "bench/cluster-rtt.ts"
    },
    outdir,
    bundle: true,
    format: "esm",
    platform: "node",
    mainFields: ["module", "main"],
    target: "node20",
    outExtension: { ".js": ".mjs" },
    nodePaths: [
      join(root, "packages", "cli", "node_modules"),
      join(root, "packages", "protocol", "node_modules"),
      join(root, "packages", "relay", "node_modules"),
      join(root, "packages", "agent", "node_modules")
    ],
    banner: {
      js: 'import { createRequire as __cmdopRequire } from "node:module"; const require = __cmdopRequire(import.meta.url);'
    },
    logLevel: "warning"
  })
  return (name) => join(outdir, `${name}.mjs`)
}

const main = async () => {
  const tool = await bundle()
  psql(`CREATE DATABASE ${database}`)
  const url = `${pgBase}/${database}`
  const nodeEnv = { ...baseEnv, CMDOP_CLUSTER_SECRET: secret }
  const nodes = []
  for (const n of [1, 2, 3]) {
    const [grpcPort, peerPort] = [await freePort(), await freePort()]
    const extra = n === 1 ? ["bench"] : []
    const { child, value } = await firstLine(
      `node-${n}`,
      [tool("cluster-node"), url, `node-${n}`, String(grpcPort), String(peerPort), ...extra],
      { env: nodeEnv }
    )
    nodes.push({ ...value, pid: child.pid, child })
    log(`node-${n}: ${value.grpc} (peer ${value.peer}), pid ${child.pid}`)
  }
  const key = nodes[0].key
  const results = {
    agents: AGENTS,
    nodes: 3,
    loadAverage: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number),
    cpus: (await import("node:os")).cpus().length
  }

  // A real agent on node 1, for exec.
  const agentHome = join(tmp, "agent-home")
  startProcess("agent", [join(root, "bin", "cmdop"), "agent", "start", "--foreground", "--server", nodes[0].grpc], {
    env: { ...baseEnv, HOME: agentHome, CMDOP_API_KEY: key }
  })
  const machine = "bench-agent"
  const hostname = spawnSync("hostname", { encoding: "utf8" }).stdout.trim()
  for (let i = 0; ; i++) {
    try {
      await runTool([tool("warm-exec"), "latency", nodes[0].grpc, key, hostname, "1"], baseEnv, 30_000)
      break
    } catch (e) {
      if (i > 100) throw new Error(`the agent never came online: ${e.message}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  }
  void machine

  // Local and forwarded runs alternate, in rounds, so a change of load on a shared machine hits both alike.
  const latency = async (node, n) =>
    (await runTool([tool("warm-exec"), "latency", node.grpc, key, hostname, String(n)])).samples
  const rounds = 10
  const local = []
  const forwarded = []
  for (let r = 0; r < rounds; r++) {
    local.push(...(await latency(nodes[0], Math.ceil(LATENCY_RUNS / rounds))))
    forwarded.push(...(await latency(nodes[1], Math.ceil(LATENCY_RUNS / rounds))))
  }
  results.latency = {
    runs: local.length,
    localP50: quantile(local, 0.5),
    localP90: quantile(local, 0.9),
    forwardedP50: quantile(forwarded, 0.5),
    forwardedP90: quantile(forwarded, 0.9),
    addedP50: quantile(forwarded, 0.5) - quantile(local, 0.5)
  }
  log(`exec latency: ${JSON.stringify(results.latency)}`)

  // The relay's own round trip (no process started on the machine), local and forwarded, alternating.
  const rtt = async (node, n) => (await runTool([tool("cluster-rtt"), node.grpc, key, hostname, String(n)])).samples
  const rttLocal = []
  const rttForwarded = []
  for (let r = 0; r < rounds; r++) {
    rttLocal.push(...(await rtt(nodes[0], 50)))
    rttForwarded.push(...(await rtt(nodes[1], 50)))
  }
  results.relayRoundTrip = {
    runs: rttLocal.length,
    localP50: quantile(rttLocal, 0.5),
    forwardedP50: quantile(rttForwarded, 0.5),
    addedP50: quantile(rttForwarded, 0.5) - quantile(rttLocal, 0.5)
  }
  log(`relay round trip (listSessions): ${JSON.stringify(results.relayRoundTrip)}`)

  const bytes = THROUGHPUT_MB * 1_000_000
  const once = async (node) => {
    const r = await runTool([tool("warm-exec"), "throughput", node.grpc, key, hostname, String(bytes)])
    return r.bytes / 1e6 / (r.ms / 1000)
  }
  const localRuns = []
  const forwardedRuns = []
  for (let i = 0; i < 5; i++) {
    localRuns.push(await once(nodes[0]))
    forwardedRuns.push(await once(nodes[1]))
  }
  const localMBps = quantile(localRuns, 0.5)
  const forwardedMBps = quantile(forwardedRuns, 0.5)
  results.throughput = {
    bytes,
    runs: 5,
    localMBps,
    forwardedMBps,
    ratio: forwardedMBps / localMBps,
    localRuns,
    forwardedRuns
  }
  log(`exec throughput: ${JSON.stringify(results.throughput)}`)

  // Idle agents, spread over the nodes (agent i starts on node i mod 3).
  const before = nodes.map((n) => rssOf(n.pid))
  const servers = nodes.map((n) => n.grpc).join(",")
  const perProcess = Number(flag("per-process", "500"))
  const sims = []
  const t0 = performance.now()
  for (let first = 0; first < AGENTS; first += perProcess) {
    const count = Math.min(perProcess, AGENTS - first)
    const sim = { online: 0, connects: 0, failures: 0, timeline: [] }
    const ready = firstLine(`sims-${first}`, [tool("cluster-sims"), servers, key, String(count), String(first), "32"], {
      onLine: (line) => {
        const v = JSON.parse(line)
        if (v.at !== undefined) {
          Object.assign(sim, { online: v.online, connects: v.connects, failures: v.failures })
          sim.timeline.push(v)
        }
      }
    })
    sims.push({ sim, ready })
  }
  const readies = await Promise.all(sims.map((s) => s.ready))
  const connectMs = performance.now() - t0
  const online = async (want, timeoutMs) => {
    const start = performance.now()
    while (sims.reduce((a, s) => a + s.sim.online, 0) < want) {
      if (performance.now() - start > timeoutMs) return false
      await new Promise((r) => setTimeout(r, 50))
    }
    return true
  }
  await online(AGENTS, 120_000)
  const after = nodes.map((n) => rssOf(n.pid))
  const perNode = Number(psql("SELECT count(*) FROM cluster_routes WHERE node_id = 'node-2'", database))
  results.idle = {
    connected: sims.reduce((a, s) => a + s.sim.online, 0),
    connectSeconds: connectMs / 1000,
    rssBeforeMB: before.map((b) => b / 1e6),
    rssAfterMB: after.map((b) => b / 1e6),
    rssPerAgentKB: (after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0)) / AGENTS / 1024,
    simsReady: readies.length
  }
  log(`idle agents: ${JSON.stringify(results.idle)}`)

  // kill -9 of node 2: how long until every agent is online again, and how fast they came.
  const killedAt = Date.now()
  const connectsBefore = sims.reduce((a, s) => a + s.sim.connects, 0)
  process.kill(nodes[1].pid, "SIGKILL")
  // First the agents notice (their streams break), then they come back through the other nodes.
  const dropStart = performance.now()
  while (sims.reduce((a, s) => a + s.sim.online, 0) >= AGENTS && performance.now() - dropStart < 15_000)
    await new Promise((r) => setTimeout(r, 20))
  const lowest = { online: AGENTS }
  const watch = setInterval(() => {
    lowest.online = Math.min(
      lowest.online,
      sims.reduce((a, s) => a + s.sim.online, 0)
    )
  }, 20)
  const back = await online(AGENTS, 120_000)
  clearInterval(watch)
  const backMs = Date.now() - killedAt
  // Connection rate after the kill, per 500 ms bucket, summed over the sim processes.
  const buckets = new Map()
  for (const { sim } of sims) {
    let prev = undefined
    for (const p of sim.timeline) {
      if (p.at < killedAt) {
        prev = p
        continue
      }
      const bucket = Math.floor((p.at - killedAt) / 500)
      buckets.set(bucket, (buckets.get(bucket) ?? 0) + (p.connects - (prev?.connects ?? p.connects)))
      prev = p
    }
  }
  const rate = [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([b, n]) => ({ fromMs: b * 500, connects: n }))
  results.failover = {
    agentsOnKilledNode: perNode,
    lowestOnline: lowest.online,
    allBack: back,
    backSeconds: backMs / 1000,
    reconnects: sims.reduce((a, s) => a + s.sim.connects, 0) - connectsBefore,
    peakPer500ms: Math.max(0, ...rate.map((r) => r.connects)),
    rate
  }
  log(`failover: ${JSON.stringify({ ...results.failover, rate: undefined })}`)
  log(`connection rate after the kill (per 500 ms): ${rate.map((r) => r.connects).join(" ")}`)
  return results
}

main()
  .then((results) => {
    const text = JSON.stringify(results, null, 2)
    if (jsonOut) writeFileSync(jsonOut, text)
    process.stdout.write(`${text}\n`)
    cleanup()
    process.exit(0)
  })
  .catch((e) => {
    log(`failed: ${e.stack ?? e}`)
    cleanup()
    process.exit(1)
  })
