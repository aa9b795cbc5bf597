// One real agent daemon's memory while idle (issue 11: "one idle agent process RSS"): starts a relay and
// `cmdop agent start --foreground` in temp HOMEs, waits until the daemon reports ONLINE, then samples the
// daemon's VmRSS (and RssAnon / RssFile from /proc/<pid>/status) at a few points of an idle minute.
// `node bench/agent-rss.mjs [--json]`; AGENT_RSS_AT=0.5,10,30 (seconds after ONLINE) sets the sample points;
// AGENT_RSS_ROUNDS=3 repeats with a fresh agent (same relay); AGENT_RSS_NODE_ARGS="…" adds node flags to the agent.
// For digging: AGENT_RSS_DETAIL=1 logs the agent's largest mappings (smaps) after the last sample and sends it
// SIGUSR2 (for a `--require`d probe of your own: heap statistics, a heap snapshot), AGENT_RSS_SMAPS=<program> runs
// that program with the agent's pid then, AGENT_RSS_SIGNAL_AT_ONLINE=1 sends SIGUSR2 as soon as it is ONLINE.
// Every process it starts is stopped at the end; nothing outside its temp dir is touched.
import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { agentOnline, cleanEnv, freePort, processes, registerOnceUp, sleep } from "./localProcesses.mjs"

// AGENT_RSS_ROOT=<another checkout, built>: measure its CLI instead (a before/after on the same machine).
const root = process.env.AGENT_RSS_ROOT || join(dirname(fileURLToPath(import.meta.url)), "..")
const cliBin = join(root, "bin", "cmdop")
const at = (process.env.AGENT_RSS_AT || "0.5,10,30").split(",").map(Number)
const rounds = Number(process.env.AGENT_RSS_ROUNDS || 3)
const nodeArgs = (process.env.AGENT_RSS_NODE_ARGS ?? "").split(" ").filter((a) => a !== "")
const log = (text) => process.stderr.write(`agent-rss: ${text}\n`)

const tmp = mkdtempSync(join(tmpdir(), "cmdop-agent-rss-"))
const { children, run, daemon, stop, stopAll } = processes({ tmp, env: cleanEnv() })
const cmdop = (args, home) => run(cliBin, args, home)

const status = (pid) => {
  const text = readFileSync(`/proc/${pid}/status`, "utf8")
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1])
  return { rss: kib("VmRSS"), anon: kib("RssAnon"), file: kib("RssFile"), hwm: kib("VmHWM") }
}

const main = async () => {
  const adminHome = join(tmp, "admin")
  mkdirSync(adminHome)
  const dataDir = join(tmp, "relay")
  const apiKey = JSON.parse(
    cmdop(["relay", "workspace", "create", "rss", "--json", "--data-dir", dataDir], adminHome)
  ).api_key
  const grpcPort = await freePort()
  const httpPort = await freePort()
  const relay = daemon(
    "relay",
    [
      cliBin,
      "relay",
      "serve",
      "--host",
      "127.0.0.1",
      "--grpc-port",
      String(grpcPort),
      "--http-port",
      String(httpPort),
      "--data-dir",
      dataDir
    ],
    adminHome
  )
  const server = `127.0.0.1:${grpcPort}`
  const results = []
  for (let round = 0; round < rounds; round++) {
    const home = join(tmp, `agent-${round}`)
    mkdirSync(home)
    const register = () => cmdop(["agent", "register", "--hostname", `rss-${round}`, "-k", apiKey, "-s", server], home)
    await registerOnceUp(register)
    const agent = daemon(
      `agent-${round}`,
      [...nodeArgs, cliBin, "agent", "start", "--foreground", "-k", apiKey, "-s", server],
      home
    )
    await agentOnline(home, () =>
      children.has(agent) ? undefined : readFileSync(join(tmp, `agent-${round}.log`), "utf8")
    )
    if (process.env.AGENT_RSS_SIGNAL_AT_ONLINE === "1") process.kill(agent.pid, "SIGUSR2")
    const t0 = Date.now()
    const samples = []
    for (const s of at) {
      await sleep(Math.max(0, t0 + s * 1000 - Date.now()))
      samples.push({ at: s, ...status(agent.pid) })
    }
    results.push(samples)
    if (process.env.AGENT_RSS_DETAIL === "1") {
      const byMap = new Map()
      let name = ""
      for (const line of readFileSync(`/proc/${agent.pid}/smaps`, "utf8").split("\n")) {
        const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
        if (head) name = head[1] || "[anon]"
        const rss = /^Rss:\s+(\d+) kB/.exec(line)
        if (rss) byMap.set(name, (byMap.get(name) ?? 0) + Number(rss[1]))
      }
      const top = [...byMap].sort((a, b) => b[1] - a[1]).slice(0, 12)
      if (process.env.AGENT_RSS_SMAPS) spawnSync(process.env.AGENT_RSS_SMAPS, [String(agent.pid)], { stdio: "inherit" })
      log(`largest mappings: ${top.map(([n, k]) => `${n} ${(k / 1024).toFixed(1)} MiB`).join(", ")}`)
      try {
        process.kill(agent.pid, "SIGUSR2")
        await sleep(1000)
      } catch {}
    }
    log(`round ${round + 1}: ${samples.map((x) => `${x.at}s ${(x.rss / 1024).toFixed(1)} MiB`).join(", ")}`)
    await stop(agent)
  }
  await stop(relay)
  if (process.argv.includes("--json")) process.stdout.write(JSON.stringify(results) + "\n")
  else
    for (const [i, samples] of results.entries())
      process.stdout.write(
        `round ${i + 1}: ` +
          samples
            .map(
              (x) =>
                `${x.at}s RSS ${(x.rss / 1024).toFixed(1)} MiB (anon ${(x.anon / 1024).toFixed(1)}, file ${(x.file / 1024).toFixed(1)}, peak ${(x.hwm / 1024).toFixed(1)})`
            )
            .join("; ") +
          "\n"
      )
}

try {
  await main()
} finally {
  await stopAll()
  rmSync(tmp, { recursive: true, force: true })
}
