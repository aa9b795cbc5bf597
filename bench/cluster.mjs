#!/usr/bin/env node
// The cluster benchmark: three `cmdop relay serve` nodes on one fresh PostgreSQL database, a real agent on node 1,
// and many simulated idle agents spread over the three (bench/cluster-sims.ts, each given all three nodes like
// `cmdop agent start --server a,b,c`). It measures
//  - exec latency through node 1 (local) and node 2 (forwarded to node 1 over the peer port), p50 and p90, and the
//    added latency of forwarding at p50 (goal ≤ 1 ms);
//  - the relay's own round trip (`listSessions`, no process started) local and forwarded: what a hop adds;
//  - exec throughput (`head -c` of /dev/zero) local and forwarded, their ratio (goal ≥ 0.8×), and the CPU each
//    node spent per MB;
//  - idle agents: how many of `--agents` came online (and how fast), relay RSS per idle agent;
//  - after `kill -9` of node 3 (nodes 1 and 2 stay up, for their CPU profiles): the time until every agent is online again through the other nodes, with the
//    connection rate per 500 ms (no thundering herd: the agents' backoff has full jitter).
// Usage: node bench/cluster.mjs [--agents N] [--per-process N] [--latency-runs N] [--warmup N] [--throughput-mb N]
//   [--connect-timeout S] [--cpu-prof DIR] [--only-hop | --skip-hop] [--json FILE]
// (--warmup: untimed execs through each node before the latency rounds, default 500, as the single-relay bench;
// --client-warmup: untimed calls at the start of each timed run, in its fresh client process, default 100.)
// Needs PostgreSQL (CMDOP_BENCH_PG, default postgres://postgres@127.0.0.1:5432/test: a fresh database is created
// next to it for the run) and `psql`. When it is unreachable the result is `{ "available": false, "reason" }`.
// Prints the results as JSON on stdout (and to --json FILE); progress goes to stderr.
import { randomBytes } from "node:crypto"
import { cpus } from "node:os"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as L from "./cluster-lib.mjs"
import { measureFailover, startIdleAgents } from "./cluster-idle.mjs"

const argv = process.argv.slice(2)
const flag = (name, fallback) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback
}
const AGENTS = Number(flag("agents", "10000"))
const PER_PROCESS = Number(flag("per-process", "500"))
const LATENCY_RUNS = Number(flag("latency-runs", "300"))
/**
 * Untimed execs through each node before the latency rounds (and a share of them before the relay round trips):
 * nodes in service have compiled their paths, as the single-relay bench warms a fresh relay with 500.
 */
const WARMUP = Number(flag("warmup", "500"))
/**
 * Untimed calls at the start of each timed run of the `warm-exec` tool (a fresh client process each run): its own
 * code compiled before it times anything, as the single-relay bench's client is (there, 500 in one process).
 */
const CLIENT_WARMUP = Number(flag("client-warmup", "100"))
const THROUGHPUT_MB = Number(flag("throughput-mb", "200"))
const CONNECT_TIMEOUT_MS = Number(flag("connect-timeout", "240")) * 1000
const cpuProfDir = flag("cpu-prof", undefined)
/** `--only-hop`: the forwarding figures alone (no idle agents, no failover). */
const ONLY_HOP = argv.includes("--only-hop")
/** `--skip-hop`: the idle agents and the failover alone (no latency or throughput runs). */
const SKIP_HOP = argv.includes("--skip-hop")
const jsonOut = flag("json", undefined)
const secret = randomBytes(36).toString("base64url")

/** Whether this build's `relay serve` has the per-source connection cap flag (all simulated agents are 127.0.0.1). */
const hasSourceCap = () =>
  L.cmdop(["relay", "serve", "--help"]).stdout.includes("--max-connections-per-source") ||
  readFileSync(join(L.root, "packages", "cli", "dist", "cmdop.mjs"), "utf8").includes("max-connections-per-source")

/** One node: `relay serve` in cluster mode; resolves once it prints its addresses (`--json`). */
const startNode = async (n, sourceCap) => {
  const [grpc, http, peer] = [await L.freePort(), await L.freePort(), await L.freePort()]
  const name = `node-${n}`
  const prof = cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", cpuProfDir, `--cpu-prof-name=${name}.cpuprofile`] : []
  let text = ""
  const { child } = await L.firstLine(
    name,
    [
      ...prof,
      "--max-old-space-size=4096",
      ...L.serveArgs({ name, grpc, http, peer }),
      ...(sourceCap === undefined ? [] : ["--max-connections-per-source", String(sourceCap)])
    ],
    { env: { ...L.baseEnv, HOME: join(L.tmp, `${name}-home`), CMDOP_CLUSTER_SECRET: secret } },
    // `--json` prints one object over several lines: done at its closing brace.
    (line) => {
      text += `${line}\n`
      return line === "}"
    }
  )
  const printed = JSON.parse(text)
  L.log(`${name}: grpc ${printed.grpc}, peer ${printed.peer_address}, pid ${child.pid}`)
  return { name, grpc: printed.grpc, http: printed.http, pid: child.pid }
}

/** Runs `body`, and the CPU ms each of `nodes` used meanwhile. */
const withCpu = async (nodes, body) => {
  const before = nodes.map((n) => L.cpuMs(n.pid))
  const result = await body()
  return { result, cpu: nodes.map((n, i) => L.cpuMs(n.pid) - before[i]) }
}

const measureHop = async (tool, nodes, key, machine, results) => {
  // Local and forwarded runs alternate, in rounds, so a change of load on a shared machine hits both alike.
  const rounds = 10
  // CPU of node 1 (owner) and node 2 (front) per exec, the untimed warm-up calls of each run included.
  const cpu = { local: [0, 0], forwarded: [0, 0], execs: 0 }
  const env = { ...L.baseEnv, BENCH_WARM_WARMUP: String(CLIENT_WARMUP) }
  const latency = async (node, n, into) => {
    const { result, cpu: used } = await withCpu(nodes.slice(0, 2), () =>
      L.runTool([tool("warm-exec"), "latency", node.grpc, key, machine, String(n)], env)
    )
    used.forEach((ms, i) => (into[i] += ms))
    return result.samples
  }
  // Both paths warmed alike first (not counted in the CPU per exec).
  if (WARMUP > 0) {
    const untimed = [0, 0]
    await latency(nodes[0], WARMUP, untimed)
    await latency(nodes[1], WARMUP, untimed)
  }
  const local = []
  const forwarded = []
  const perRound = Math.ceil(LATENCY_RUNS / rounds)
  for (let r = 0; r < rounds; r++) {
    local.push(...(await latency(nodes[0], perRound, cpu.local)))
    forwarded.push(...(await latency(nodes[1], perRound, cpu.forwarded)))
  }
  const execs = rounds * (perRound + CLIENT_WARMUP)
  results.latency = {
    warmup: WARMUP,
    clientWarmup: CLIENT_WARMUP,
    cpuPerExecMs: {
      localOwner: cpu.local[0] / execs,
      forwardedOwner: cpu.forwarded[0] / execs,
      forwardedFront: cpu.forwarded[1] / execs
    },
    runs: local.length,
    localP50: L.quantile(local, 0.5),
    localP90: L.quantile(local, 0.9),
    forwardedP50: L.quantile(forwarded, 0.5),
    forwardedP90: L.quantile(forwarded, 0.9),
    addedP50: L.quantile(forwarded, 0.5) - L.quantile(local, 0.5)
  }
  L.log(`exec latency: ${JSON.stringify(results.latency)}`)

  // The relay's own round trip (no process started on the machine), local and forwarded, alternating.
  const rtt = async (node, n) => (await L.runTool([tool("cluster-rtt"), node.grpc, key, machine, String(n)])).samples
  const rttLocal = []
  const rttForwarded = []
  if (WARMUP > 0) {
    await rtt(nodes[0], Math.ceil(WARMUP / 2))
    await rtt(nodes[1], Math.ceil(WARMUP / 2))
  }
  for (let r = 0; r < rounds; r++) {
    rttLocal.push(...(await rtt(nodes[0], 50)))
    rttForwarded.push(...(await rtt(nodes[1], 50)))
  }
  results.relayRoundTrip = {
    runs: rttLocal.length,
    localP50: L.quantile(rttLocal, 0.5),
    forwardedP50: L.quantile(rttForwarded, 0.5),
    addedP50: L.quantile(rttForwarded, 0.5) - L.quantile(rttLocal, 0.5)
  }
  L.log(`relay round trip (listSessions): ${JSON.stringify(results.relayRoundTrip)}`)

  // Throughput, alternating; CPU per MB of the owning node (1) and, forwarded, of the forwarding node (2).
  const bytes = THROUGHPUT_MB * 1_000_000
  const once = async (node) => {
    const { result, cpu } = await withCpu(nodes.slice(0, 2), () =>
      L.runTool([tool("warm-exec"), "throughput", node.grpc, key, machine, String(bytes)])
    )
    if (result.bytes !== bytes) throw new Error(`throughput: got ${result.bytes} of ${bytes} bytes`)
    return { mbps: bytes / 1e6 / (result.ms / 1000), cpuPerMb: cpu.map((ms) => ms / (bytes / 1e6)) }
  }
  const localRuns = []
  const forwardedRuns = []
  for (let i = 0; i < 5; i++) {
    localRuns.push(await once(nodes[0]))
    forwardedRuns.push(await once(nodes[1]))
  }
  const median = (runs, f) => L.quantile(runs.map(f), 0.5)
  const localMBps = median(localRuns, (r) => r.mbps)
  const forwardedMBps = median(forwardedRuns, (r) => r.mbps)
  results.throughput = {
    bytes,
    runs: 5,
    localMBps,
    forwardedMBps,
    ratio: forwardedMBps / localMBps,
    localRuns: localRuns.map((r) => r.mbps),
    forwardedRuns: forwardedRuns.map((r) => r.mbps),
    cpuPerMbMs: {
      localOwner: median(localRuns, (r) => r.cpuPerMb[0]),
      forwardedOwner: median(forwardedRuns, (r) => r.cpuPerMb[0]),
      forwardedFront: median(forwardedRuns, (r) => r.cpuPerMb[1])
    }
  }
  L.log(`exec throughput: ${JSON.stringify(results.throughput)}`)
}

const main = async () => {
  const problem = L.pgProblem()
  if (problem !== undefined) {
    L.log(`unavailable: ${problem}`)
    return { available: false, reason: problem }
  }
  const tool = await L.bundle()
  L.createDatabase()
  const sourceCap = hasSourceCap() ? AGENTS + 1000 : undefined
  if (sourceCap === undefined)
    L.log("relay serve has no --max-connections-per-source here: each node takes at most 1024 agents from 127.0.0.1")
  const nodes = []
  for (const n of [1, 2, 3]) nodes.push(await startNode(n, sourceCap))
  const created = L.cmdop(["relay", "workspace", "create", "bench", "--json", "--db", L.databaseUrl], {
    ...L.baseEnv,
    HOME: join(L.tmp, "admin-home")
  })
  if (created.code !== 0) throw new Error(`relay workspace create: ${created.stderr.trim()}`)
  const key = JSON.parse(created.stdout).api_key
  const results = {
    available: true,
    agents: AGENTS,
    nodes: 3,
    sourceCap: sourceCap ?? 1024,
    loadAverage: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number),
    cpus: cpus().length
  }

  // A real agent on node 1, for exec.
  const machine = await L.startAgent(nodes[0].grpc, key, tool("warm-exec"))
  // What the nodes spend with nothing to do (lease renewals, event pings), to read the per-exec figures against.
  const idleCpu = await withCpu(nodes, () => L.sleep(5000))
  results.backgroundCpuMsPerSecond = idleCpu.cpu.map((ms) => ms / 5)
  L.log(`background CPU of the nodes, ms per second: ${results.backgroundCpuMsPerSecond.join(", ")}`)
  if (!SKIP_HOP) await measureHop(tool, nodes, key, machine, results)
  if (ONLY_HOP) return results

  const idle = await startIdleAgents({
    tool,
    nodes,
    key,
    agents: AGENTS,
    perProcess: PER_PROCESS,
    timeoutMs: CONNECT_TIMEOUT_MS
  })
  results.idle = idle.summary
  L.log(`idle agents: ${JSON.stringify(results.idle)}`)
  results.failover = await measureFailover({ nodes, sims: idle.sims, want: idle.summary.connected, killed: 2 })
  L.log(`failover: ${JSON.stringify({ ...results.failover, rate: undefined })}`)
  L.log(`connection rate after the kill (per 500 ms): ${results.failover.rate.map((r) => r.connects).join(" ")}`)
  return results
}

main()
  .then((results) => {
    const text = JSON.stringify(results, null, 2)
    if (jsonOut) writeFileSync(jsonOut, text)
    process.stdout.write(`${text}\n`)
    return L.cleanup().then(() => process.exit(0))
  })
  .catch((e) => {
    L.log(`failed: ${e.stack ?? e}`)
    for (const name of ["node-1", "node-2", "node-3", "agent"]) {
      const tail = L.logTail(name, 600).trim()
      if (tail) L.log(`${name}.log (tail): ${tail}`)
    }
    return L.cleanup().then(() => process.exit(1))
  })
