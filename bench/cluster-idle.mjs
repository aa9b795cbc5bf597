// The idle-agents and failover parts of bench/cluster.mjs: many simulated agents (bench/cluster-sims.ts, several
// processes), how many come online and what they cost the nodes; then `kill -9` of one node and how its agents
// come back through the others.
import * as L from "./cluster-lib.mjs"

const total = (sims, field) => sims.reduce((a, s) => a + s.sim[field], 0)

/** How many agents each node holds, from the routing table. */
const routesByNode = () =>
  Object.fromEntries(
    L.query("SELECT node_id, count(*) FROM cluster_routes GROUP BY node_id ORDER BY node_id")
      .split("\n")
      .filter((l) => l.includes("|"))
      .map((l) => l.split("|"))
      .map(([node, n]) => [node, Number(n)])
  )

/**
 * Starts `agents` simulated agents in processes of `perProcess`, all at once (each process connects 32 at a time),
 * and waits until all are online, `timeoutMs` passed, or nothing came online for 30 s. Returns the processes (they
 * keep running, for the failover) and a summary.
 */
export const startIdleAgents = async ({ tool, nodes, key, agents, perProcess, timeoutMs }) => {
  await L.sleep(2000)
  const before = nodes.map((n) => L.rssOf(n.pid))
  const cpuBefore = nodes.map((n) => L.cpuMs(n.pid))
  const servers = nodes.map((n) => n.grpc).join(",")
  const sims = []
  const t0 = performance.now()
  for (let first = 0; first < agents; first += perProcess) {
    const count = Math.min(perProcess, agents - first)
    const sim = { online: 0, connects: 0, failures: 0, timeline: [] }
    const name = `sims-${first}`
    const child = L.startProcess(
      name,
      ["--max-old-space-size=4096", tool("cluster-sims"), servers, key, String(count), String(first), "32"],
      {
        onLine: (line) => {
          const v = JSON.parse(line)
          if (v.at === undefined) return
          Object.assign(sim, { online: v.online, connects: v.connects, failures: v.failures, reasons: v.reasons })
          sim.timeline.push(v)
        }
      }
    )
    sims.push({ sim, child, name })
  }
  // Online agents every second, until all are, the time is up, or progress stopped.
  const curve = []
  let best = { online: 0, at: performance.now() }
  for (;;) {
    await L.sleep(1000)
    const online = total(sims, "online")
    const seconds = (performance.now() - t0) / 1000
    curve.push({ seconds: Math.round(seconds), online, rssMB: nodes.map((n) => Math.round(L.rssOf(n.pid) / 1e6)) })
    if (online > best.online) best = { online, at: performance.now() }
    if (online >= agents) break
    if (performance.now() - t0 > timeoutMs) break
    if (performance.now() - best.at > 30_000) break
    if (sims.every((s) => s.child.exitCode !== null)) break
  }
  const connectMs = performance.now() - t0
  const connected = total(sims, "online")
  await L.sleep(3000)
  const after = nodes.map((n) => L.rssOf(n.pid))
  const cpu = nodes.map((n, i) => L.cpuMs(n.pid) - cpuBefore[i])
  const dead = sims.filter((s) => s.child.exitCode !== null).map((s) => `${s.name}: ${L.logTail(s.name, 200)}`)
  const summary = {
    requested: agents,
    connected,
    allOnline: connected >= agents,
    failures: total(sims, "failures"),
    connectSeconds: connectMs / 1000,
    connectPerSecond: connected / (connectMs / 1000),
    rssBeforeMB: before.map((b) => b / 1e6),
    rssAfterMB: after.map((b) => b / 1e6),
    rssPerAgentKB:
      connected > 0
        ? (after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0)) / connected / 1024
        : undefined,
    nodeCpuSeconds: cpu.map((ms) => ms / 1000),
    simulatorProcesses: sims.length,
    simulatorRssMB: sims.reduce((a, s) => a + L.rssOf(s.child.pid), 0) / 1e6,
    simulatorCpuSeconds: sims.reduce((a, s) => a + L.cpuMs(s.child.pid), 0) / 1000,
    routes: routesByNode(),
    // Why attempts failed or streams ended, summed over the simulators.
    reasons: sims.reduce((all, s) => {
      for (const [why, n] of Object.entries(s.sim.reasons ?? {})) all[why] = (all[why] ?? 0) + n
      return all
    }, {}),
    curve: curve.filter((_, i) => i % 5 === 4 || i === curve.length - 1),
    ...(dead.length > 0 ? { deadSimulators: dead.slice(0, 3) } : {})
  }
  return { sims, summary }
}

/** `kill -9` of `nodes[killed]`: how long until `want` agents are online again, and how fast they came. */
export const measureFailover = async ({ nodes, sims, want, killed }) => {
  const victim = nodes[killed]
  const onVictim = routesByNode()[victim.name] ?? 0
  const killedAt = Date.now()
  const connectsBefore = total(sims, "connects")
  process.kill(victim.pid, "SIGKILL")
  // First the agents notice (their streams break), then they come back through the other nodes.
  const dropStart = performance.now()
  while (total(sims, "online") >= want && performance.now() - dropStart < 15_000) await L.sleep(20)
  let lowest = total(sims, "online")
  const start = performance.now()
  let back = false
  for (;;) {
    const online = total(sims, "online")
    lowest = Math.min(lowest, online)
    if (online >= want) {
      back = true
      break
    }
    if (performance.now() - start > 120_000) break
    await L.sleep(20)
  }
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
  return {
    killed: victim.name,
    agentsOnKilledNode: onVictim,
    lowestOnline: lowest,
    allBack: back,
    backSeconds: backMs / 1000,
    reconnects: total(sims, "connects") - connectsBefore,
    peakPer500ms: Math.max(0, ...rate.map((r) => r.connects)),
    rate
  }
}
