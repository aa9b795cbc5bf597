#!/usr/bin/env node
// The forwarding hop alone, for comparing builds on a loaded box: for each checkout given (default: this one), two
// `relay serve` nodes on a fresh PostgreSQL database and a real agent on node 1; then, in rounds that alternate
// between the checkouts, the relay's own round trip (`listSessions`) and exec of `true` through node 1 (local) and
// node 2 (forwarded), with the CPU time of both nodes per call (/proc/<pid>/stat), which the load of other work on
// the box moves far less than wall time.
// With `--cpu-prof DIR` each node writes a CPU profile; the runs' windows (CLOCK_MONOTONIC µs, in the output) cut
// it to one kind of call. With `HOP_PRELOAD=<abs path of bench/heap-sample.cjs>` each node is sent SIGUSR2 before
// and after every run: one allocation profile per run and node, in the order the runs went.
// `--kinds tput` (or a list, `rtt,exec,tput`) adds one exec of `head -c` of `--mb` MB per round and place: MB/s
// local and forwarded, their ratio, and the CPU of owner and front per MB.
// Usage: node bench/cluster-hop.mjs [--rounds N] [--rtt N] [--execs N] [--warmup N] [--kinds K,…] [--mb N]
//   [--cpu-prof DIR] [checkout…]
// Prints one JSON object per checkout on stdout: p50 local/forwarded, added p50, CPU ms per call of owner and front.
import { randomBytes } from "node:crypto"
import { spawnSync } from "node:child_process"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const argv = process.argv.slice(2)
const flags = new Map()
const roots = []
for (let i = 0; i < argv.length; i++) {
  if (argv[i].startsWith("--")) flags.set(argv[i].slice(2), argv[++i])
  else roots.push(resolve(argv[i]))
}
if (roots.length === 0) roots.push(resolve(fileURLToPath(import.meta.url), "..", ".."))
const ROUNDS = Number(flags.get("rounds") ?? 6)
const RTT = Number(flags.get("rtt") ?? 200)
const EXECS = Number(flags.get("execs") ?? 40)
/** Untimed execs and round trips through each node before the rounds (a cluster in service has compiled its paths). */
const WARMUP = Number(flags.get("warmup") ?? 500)
const cpuProfDir = flags.get("cpu-prof")
/** `--kinds`: which runs each round makes: `rtt`, `exec`, and `tput` (one exec of `head -c <--mb> MB`). */
const KINDS = (flags.get("kinds") ?? "rtt,exec").split(",")
const MB = Number(flags.get("mb") ?? 200)
const secret = randomBytes(36).toString("base64url")

const setUp = async (root, index) => {
  const L = await import(join(root, "bench", "cluster-lib.mjs"))
  const problem = L.pgProblem()
  if (problem !== undefined) throw new Error(problem)
  const tool = await L.bundle()
  L.createDatabase()
  const startNode = async (n) => {
    const [grpc, http, peer] = [await L.freePort(), await L.freePort(), await L.freePort()]
    const name = `node-${n}`
    const prof = cpuProfDir
      ? ["--cpu-prof", "--cpu-prof-dir", cpuProfDir, `--cpu-prof-name=c${index}-${name}.cpuprofile`]
      : []
    if (process.env.HOP_PRELOAD) prof.push("--require", process.env.HOP_PRELOAD)
    let text = ""
    const { child } = await L.firstLine(
      name,
      [...prof, ...L.serveArgs({ name, grpc, http, peer })],
      { env: { ...L.baseEnv, HOME: join(L.tmp, `${name}-home`), CMDOP_CLUSTER_SECRET: secret } },
      (line) => {
        text += `${line}\n`
        return line === "}"
      }
    )
    return { name, grpc: JSON.parse(text).grpc, pid: child.pid }
  }
  const nodes = [await startNode(1), await startNode(2)]
  const created = L.cmdop(["relay", "workspace", "create", "bench", "--json", "--db", L.databaseUrl], {
    ...L.baseEnv,
    HOME: join(L.tmp, "admin-home")
  })
  if (created.code !== 0) throw new Error(`relay workspace create: ${created.stderr.trim()}`)
  const key = JSON.parse(created.stdout).api_key
  const machine = await L.startAgent(nodes[0].grpc, key, tool("warm-exec"))
  if (WARMUP > 0)
    for (const node of nodes) {
      await L.runTool([tool("warm-exec"), "latency", node.grpc, key, machine, String(WARMUP)])
      await L.runTool([tool("cluster-rtt"), node.grpc, key, machine, String(Math.ceil(WARMUP / 2))])
    }
  /** When each tool run went on (CLOCK_MONOTONIC µs, the clock of V8's profile timestamps), to cut profiles by. */
  const windows = []
  const acc = Object.fromEntries(KINDS.map((k) => [k, { local: [], forwarded: [] }]))
  const cpu = Object.fromEntries(KINDS.map((k) => [k, { local: [0, 0, 0], forwarded: [0, 0, 0] }]))
  /** One tool run against node `n`, its samples and the CPU of both nodes counted per call (warm-ups included). */
  const run = async (kind, where) => {
    const node = nodes[where === "local" ? 0 : 1]
    const args =
      kind === "rtt"
        ? [tool("cluster-rtt"), node.grpc, key, machine, String(RTT)]
        : kind === "tput"
          ? [tool("warm-exec"), "throughput", node.grpc, key, machine, String(MB * 1_000_000)]
          : [tool("warm-exec"), "latency", node.grpc, key, machine, String(EXECS)]
    // Throughput runs count CPU per MB, the others per call.
    const calls = kind === "rtt" ? RTT + 20 : kind === "tput" ? MB : EXECS + 10
    const before = nodes.map((x) => L.cpuMs(x.pid))
    const t0 = process.hrtime.bigint()
    if (process.env.HOP_PRELOAD) nodes.forEach((x) => process.kill(x.pid, "SIGUSR2"))
    const result = await L.runTool(args)
    const samples = kind === "tput" ? [result.bytes / 1000 / result.ms] : result.samples
    if (process.env.HOP_PRELOAD) {
      nodes.forEach((x) => process.kill(x.pid, "SIGUSR2"))
      await L.sleep(1500)
    }
    windows.push({ kind, where, fromUs: Number(t0 / 1000n), toUs: Number(process.hrtime.bigint() / 1000n) })
    const after = nodes.map((x) => L.cpuMs(x.pid))
    acc[kind][where].push(...samples)
    const c = cpu[kind][where]
    c[0] += after[0] - before[0]
    c[1] += after[1] - before[1]
    c[2] += calls
  }
  const summary = () => {
    const out = { root, windows }
    for (const kind of KINDS) {
      const p50 = (w) => L.quantile(acc[kind][w], 0.5)
      const per = (w, i) => +(cpu[kind][w][i] / cpu[kind][w][2]).toFixed(3)
      if (kind === "tput") {
        out[kind] = {
          localMBps: +p50("local").toFixed(1),
          forwardedMBps: +p50("forwarded").toFixed(1),
          ratio: +(p50("forwarded") / p50("local")).toFixed(3),
          cpuMsPerMB: {
            localOwner: per("local", 0),
            forwardedOwner: per("forwarded", 0),
            forwardedFront: per("forwarded", 1)
          }
        }
        continue
      }
      out[kind] = {
        localP50: +p50("local").toFixed(3),
        forwardedP50: +p50("forwarded").toFixed(3),
        addedP50: +(p50("forwarded") - p50("local")).toFixed(3),
        cpuMsPerCall: {
          localOwner: per("local", 0),
          localIdleFront: per("local", 1),
          forwardedOwner: per("forwarded", 0),
          forwardedFront: per("forwarded", 1)
        }
      }
    }
    return out
  }
  return { run, summary, cleanup: L.cleanup }
}

const clusters = []
try {
  for (let i = 0; i < roots.length; i++) clusters.push(await setUp(roots[i], i))
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? clusters : [...clusters].reverse()
    for (const c of order) {
      for (const kind of KINDS) {
        await c.run(kind, "local")
        await c.run(kind, "forwarded")
      }
    }
    process.stderr.write(`[hop] round ${r + 1}/${ROUNDS}, load ${spawnSync("cat", ["/proc/loadavg"]).stdout}`)
  }
  for (const c of clusters) process.stdout.write(`${JSON.stringify(c.summary())}\n`)
} finally {
  for (const c of clusters) await c.cleanup()
}
process.exit(0)
