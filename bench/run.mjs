// cmdop vs OpenSSH on 127.0.0.1, in one run: exec latency (cold CLI process vs new ssh connection; warm library
// call vs ssh over a ControlMaster connection), keystroke echo round trip through a PTY, exec throughput, and what
// an idle agent costs a relay.
// See bench/README.md for what each figure means. `node bench/run.mjs [--json]`; knobs: BENCH_N, BENCH_WARM_N,
// BENCH_WARM_WARMUP, BENCH_ECHO_N, BENCH_ECHO_WARMUP, BENCH_BYTES, BENCH_AGENTS, BENCH_MANY_AGENTS, BENCH_MANY_BATCH, BENCH_MANY_RSS_LIMIT_MIB,
// BENCH_TIMEOUT, BENCH_SKIP_SSH, BENCH_CPU_PROF, BENCH_KEEP_TMP, BENCH_NO_CAP.
//
// Every process it starts (relays, the agent, simulated agents, sshd, the ssh master) is stopped at the end, also
// on failure or Ctrl-C; everything lives in one temp dir (temp HOMEs: the real ~/.cmdop and ~/.ssh are not used).
import { spawn, spawnSync } from "node:child_process"
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync
} from "node:fs"
import { cpus, release, tmpdir, userInfo } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { clusterRows, runCluster } from "./cluster-phase.mjs"
import { bundleTools } from "./bundleTools.mjs"
import { freePort } from "./localProcesses.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const cliBin = join(root, "bin", "cmdop")
const asJson = process.argv.includes("--json")

const envInt = (name, fallback) => {
  const raw = process.env[name]
  if (raw === undefined || raw === "") return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${raw}`)
  return n
}
const GiB = 1024 ** 3
const MiB = 1024 ** 2
const config = {
  coldN: envInt("BENCH_N", 30),
  warmN: envInt("BENCH_WARM_N", 200),
  warmWarmup: envInt("BENCH_WARM_WARMUP", 500),
  echoN: envInt("BENCH_ECHO_N", 300),
  echoWarmup: envInt("BENCH_ECHO_WARMUP", 1000),
  bytes: envInt("BENCH_BYTES", GiB),
  agents: envInt("BENCH_AGENTS", 200),
  // 0 skips the "many idle agents" phase.
  manyAgents: process.env.BENCH_MANY_AGENTS === "0" ? 0 : envInt("BENCH_MANY_AGENTS", 10_000),
  manyBatch: envInt("BENCH_MANY_BATCH", 1000),
  manyRssLimitMiB: envInt("BENCH_MANY_RSS_LIMIT_MIB", 4096),
  // 0 skips the "cluster" phase (three relay nodes on PostgreSQL, bench/cluster.mjs).
  clusterAgents: process.env.BENCH_CLUSTER_AGENTS === "0" ? 0 : envInt("BENCH_CLUSTER_AGENTS", 10_000),
  timeoutS: envInt("BENCH_TIMEOUT", 1800)
}
const skipSsh = process.env.BENCH_SKIP_SSH === "1"
/** `BENCH_PHASES=warm,throughput`: only those phases (cold, warm, echo, throughput, idle, many, cluster); default all. */
const phases = new Set((process.env.BENCH_PHASES || "cold,warm,echo,throughput,idle,many,cluster").split(","))
const cpuProfDir = process.env.BENCH_CPU_PROF || undefined
/** Below this cmdop rate (1 GiB would take over ~50 s per transfer) the transfer is capped at `SLOW_CAP`. */
const SLOW_MBPS = 20
const SLOW_CAP = 256 * MiB
const PROBE_BYTES = 32 * MiB
/** The relay's RSS "after" the transfers is read this long after their end (and once at the end as well). */
const RSS_SETTLE_MS = Number(process.env.BENCH_RSS_SETTLE_MS || 5000)

const log = (text) => process.stderr.write(`bench: ${text}\n`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const notes = []

// ---------------------------------------------------------------------------------------------------------------
// Processes: long-lived ones get their own process group (killed as a group at the end) and log to files.

const tmp = mkdtempSync(join(tmpdir(), "cmdop-bench-"))
/** @type {Map<number, string>} pid → name, for every long-lived process still running. */
const running = new Map()
/** Extra cleanup steps (ssh master), run before the process groups are killed. */
const cleanups = []

// CMDOP_* variables of the caller must not leak a credential or workspace into the benchmark.
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CMDOP_")))
const envWith = (home, extra = {}) => ({ ...baseEnv, HOME: home, ...extra })

const nodeArgs = (name) => [
  ...(process.env.BENCH_NODE_ARGS ?? "").split(" ").filter((a) => a !== ""),
  ...(cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", cpuProfDir, `--cpu-prof-name=${name}.cpuprofile`] : [])
]

/** Starts a long-lived process in its own group with stdout/stderr to `<tmp>/<name>.log`. */
const startDaemon = (name, cmd, args, env, { stdin = "ignore" } = {}) => {
  const logPath = join(tmp, `${name}.log`)
  const fd = openSync(logPath, "a")
  const child = spawn(cmd, args, { cwd: root, env, stdio: [stdin, fd, fd], detached: true })
  closeSync(fd)
  running.set(child.pid, name)
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })))
  exited.then(() => running.delete(child.pid))
  child.on("error", () => running.delete(child.pid))
  return { name, pid: child.pid, stdin: child.stdin, logPath, exited, log: () => readFileSync(logPath, "utf8") }
}

const killGroup = (pid, signal) => {
  try {
    process.kill(-pid, signal)
  } catch {
    // already gone
  }
}

/** Stops one daemon: SIGTERM to its group, SIGKILL after `graceMs`. */
const stopDaemon = async (daemon, graceMs = 3000) => {
  if (!running.has(daemon.pid)) return
  killGroup(daemon.pid, "SIGTERM")
  const done = await Promise.race([daemon.exited.then(() => true), sleep(graceMs).then(() => false)])
  if (!done) killGroup(daemon.pid, "SIGKILL")
  running.delete(daemon.pid)
}

let cleanedUp = false
const cleanup = async () => {
  if (cleanedUp) return
  cleanedUp = true
  for (const step of cleanups.splice(0).reverse()) {
    try {
      await step()
    } catch {
      // best effort
    }
  }
  for (const pid of running.keys()) killGroup(pid, "SIGTERM")
  for (let i = 0; i < 30 && [...running.keys()].some(alive); i++) await sleep(100)
  for (const pid of running.keys()) killGroup(pid, "SIGKILL")
  running.clear()
  if (process.env.BENCH_KEEP_TMP !== "1") rmSync(tmp, { recursive: true, force: true })
}
const alive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
// Last resort when the process exits some other way.
process.on("exit", () => {
  for (const pid of running.keys()) killGroup(pid, "SIGKILL")
})
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    log(`${signal}: stopping`)
    cleanup().finally(() => process.exit(130))
  })
}

/**
 * Runs a short command to its end (killed after `timeoutMs`); `count` counts stdout bytes instead of keeping them.
 * Resolves with { code, signal, stdout, stderr, bytes, ms }.
 */
const run = (cmd, args, { env = baseEnv, timeoutMs = 30_000, count = false, stdio } = {}) =>
  new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(cmd, args, { cwd: root, env, stdio: stdio ?? ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let bytes = 0
    child.stdout?.on("data", (chunk) => {
      bytes += chunk.length
      if (!count) stdout += chunk
    })
    child.stderr?.on("data", (chunk) => void (stderr += chunk))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${cmd} ${args.join(" ")}: no end within ${timeoutMs} ms`))
    }, timeoutMs)
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, bytes, ms: performance.now() - t0 })
    })
  })

const mustSucceed = (what, r) => {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code ?? r.signal}): ${(r.stderr || r.stdout).trim()}`)
  return r
}

const cmdop = (args, home, opts = {}) => run(process.execPath, [cliBin, ...args], { env: envWith(home), ...opts })

/** Waits until `probe()` returns a truthy value, polling every `everyMs`, failing after `timeoutMs`. */
const waitFor = async (what, probe, timeoutMs, everyMs = 200) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

const clockTicks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100
/** CPU time (user + system) a process has used so far, in ms (`/proc/<pid>/stat`, clock-tick resolution). */
const cpuMs = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks
}
/** Runs `body` and returns its result with the CPU ms each of `procs` used meanwhile. */
const withCpu = async (procs, body) => {
  const before = procs.map((p) => cpuMs(p.pid))
  const result = await body()
  return { result, cpu: procs.map((p, i) => cpuMs(p.pid) - before[i]) }
}

/** Resident set size of a process, in KiB (VmRSS from /proc). */
const rssKiB = (pid) => {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  if (!match) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(match[1])
}

const summarize = (samples) => {
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = (q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
  return {
    n: sorted.length,
    median: rank(0.5),
    p99: rank(0.99),
    min: sorted[0],
    max: sorted[sorted.length - 1],
    mean: sorted.reduce((s, x) => s + x, 0) / sorted.length
  }
}
/** The summary of the first `n` warm-up samples (the fresh processes' first calls), or undefined without any. */
const firstOf = (warmup, n) => (warmup === undefined || warmup.length === 0 ? undefined : summarize(warmup.slice(0, n)))
/** How many of the first warm-up calls and rounds get a row of their own. */
const FIRST_EXECS = 200
const FIRST_KEYSTROKES = 300
const mbps = (bytes, ms) => bytes / 1e6 / (ms / 1000)

// ---------------------------------------------------------------------------------------------------------------
// cmdop: a relay on SQLite, one registered agent, the in-process tools bundled with esbuild.

/** Bundles bench/warm-exec.ts, bench/echo.ts and bench/sim-agents.ts into `<tmp>/tools` (settings as in scripts/build.mjs). */
const bundleBenchTools = async () => {
  const outdir = join(tmp, "tools")
  await bundleTools({
    entryPoints: { "warm-exec": "bench/warm-exec.ts", echo: "bench/echo.ts", "sim-agents": "bench/sim-agents.ts" },
    outdir,
    packages: ["cli", "protocol"]
  })
  return {
    warmExec: join(outdir, "warm-exec.mjs"),
    echo: join(outdir, "echo.mjs"),
    simAgents: join(outdir, "sim-agents.mjs")
  }
}

/**
 * Creates a workspace in `dataDir`, then serves a relay on it; resolves once it listens. `serveArgs` go to
 * `relay serve`; `nofile` runs it with that descriptor limit (see `descriptors`).
 */
const startRelay = async (name, workspace, extraNodeArgs = [], { serveArgs = [], nofile } = {}) => {
  const dataDir = join(tmp, name)
  mkdirSync(dataDir, { recursive: true })
  const created = mustSucceed(
    "relay workspace create",
    await cmdop(["relay", "workspace", "create", workspace, "--json", "--data-dir", dataDir], join(tmp, "admin-home"))
  )
  const apiKey = JSON.parse(created.stdout).api_key
  const grpcPort = await freePort()
  const httpPort = await freePort()
  const relay = startDaemon(
    name,
    ...withNofile(nofile, process.execPath, [
      ...nodeArgs(name),
      ...extraNodeArgs,
      cliBin,
      "relay",
      "serve",
      "--json",
      "--host",
      "127.0.0.1",
      "--grpc-port",
      String(grpcPort),
      "--http-port",
      String(httpPort),
      "--data-dir",
      dataDir,
      ...serveArgs
    ]),
    envWith(join(tmp, "admin-home"))
  )
  const ready = await Promise.race([
    waitFor(
      `${name} to listen`,
      () => {
        try {
          const printed = /\{[\s\S]*?\n\}/.exec(relay.log())
          return printed ? JSON.parse(printed[0]).grpc : undefined
        } catch {
          return undefined
        }
      },
      30_000,
      100
    ),
    relay.exited.then(({ code }) => {
      throw new Error(`${name} exited (${code}) before listening: ${relay.log().trim()}`)
    })
  ])
  return { ...relay, server: ready, apiKey, dataDir }
}

/** Lists machines through the CLI (a fresh process, as a user would). */
const listMachines = async (server, apiKey) => {
  const r = mustSucceed(
    "connect --list",
    await cmdop(["connect", "--list", "--json", "-k", apiKey, "-s", server], join(tmp, "cli-home"))
  )
  return JSON.parse(r.stdout).machines
}

const startAgent = async (relay, hostname) => {
  const home = join(tmp, "agent-home")
  mkdirSync(home, { recursive: true })
  mustSucceed(
    "agent register",
    await cmdop(["agent", "register", "--hostname", hostname, "-k", relay.apiKey, "-s", relay.server], home)
  )
  const agent = startDaemon(
    "agent",
    process.execPath,
    [...nodeArgs("agent"), cliBin, "agent", "start", "--foreground", "-k", relay.apiKey, "-s", relay.server],
    envWith(home)
  )
  await waitFor(
    "the agent to be online",
    async () => {
      if (!running.has(agent.pid)) throw new Error(`the agent exited: ${agent.log().trim()}`)
      return (await listMachines(relay.server, relay.apiKey)).some((m) => m.hostname === hostname && m.online)
    },
    30_000,
    300
  )
  return agent
}

// ---------------------------------------------------------------------------------------------------------------
// OpenSSH: a private sshd on 127.0.0.1 with its own host key, client key and config in the temp dir.

const which = (name) => {
  const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" })
  return r.status === 0 ? r.stdout.trim() : undefined
}
const findSshd = () => ["/usr/sbin/sshd", "/usr/local/sbin/sshd"].find(existsSync) ?? which("sshd")

const installOpenSsh = async () => {
  if (process.getuid?.() !== 0) throw new Error("sshd is not installed and we are not root to install it")
  log("sshd not found: apt-get install openssh-server openssh-client")
  const env = { ...baseEnv, DEBIAN_FRONTEND: "noninteractive" }
  mustSucceed("apt-get update", await run("apt-get", ["update"], { env, timeoutMs: 300_000 }))
  mustSucceed(
    "apt-get install",
    await run("apt-get", ["install", "-y", "--no-install-recommends", "openssh-server", "openssh-client"], {
      env,
      timeoutMs: 600_000
    })
  )
}

/** Starts sshd; returns { args(extra), stop } where `args` are ssh client arguments up to the host. */
const startSsh = async () => {
  if (!findSshd() || !which("ssh") || !which("ssh-keygen")) await installOpenSsh()
  const sshd = findSshd()
  if (!sshd || !which("ssh")) throw new Error("sshd/ssh still missing after installing")
  const dir = join(tmp, "ssh")
  const home = join(tmp, "ssh-home")
  mkdirSync(dir, { recursive: true })
  mkdirSync(home, { recursive: true })
  // sshd refuses to start without its privilege separation directory.
  if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 })
  for (const key of ["host_key", "client_key"])
    mustSucceed(
      "ssh-keygen",
      await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", join(dir, key)])
    )
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "client_key.pub")), { mode: 0o600 })
  const port = await freePort()
  const configPath = join(dir, "sshd_config")
  writeFileSync(
    configPath,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${join(dir, "host_key")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "StrictModes no",
      "PermitRootLogin yes",
      "UsePAM no",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PrintMotd no",
      "PrintLastLog no",
      "UseDNS no",
      "MaxStartups 100:30:200",
      "MaxSessions 100",
      "LogLevel ERROR",
      // bash sources ~/.bashrc for a command run by sshd unless SHLVL says it is nested: a slow rc file (pyenv
      // init costs ~150 ms here) would be measured as OpenSSH latency. cmdop runs argv without any shell.
      "SetEnv SHLVL=1",
      ""
    ].join("\n")
  )
  mustSucceed("sshd -t", await run(sshd, ["-t", "-f", configPath]))
  const daemon = startDaemon("sshd", sshd, ["-D", "-e", "-f", configPath], baseEnv)
  const env = envWith(home)
  const base = [
    "-F",
    "/dev/null",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "IdentitiesOnly=yes",
    "-i",
    join(dir, "client_key"),
    "-p",
    String(port),
    "-l",
    userInfo().username
  ]
  const ssh = (extra, command, opts = {}) => run("ssh", [...base, ...extra, "127.0.0.1", ...command], { env, ...opts })
  await waitFor(
    "sshd to accept a login",
    async () => {
      if (!running.has(daemon.pid)) throw new Error(`sshd exited: ${daemon.log().trim()}`)
      return (await ssh([], ["true"], { timeoutMs: 10_000 })).code === 0
    },
    15_000,
    200
  )
  const controlPath = join(dir, "cm.sock")
  const control = ["-o", "ControlMaster=auto", "-o", `ControlPath=${controlPath}`, "-o", "ControlPersist=60"]
  // The master backgrounds itself; stop it with -O exit, and by pid should that fail.
  cleanups.push(async () => {
    const check = await ssh(["-o", `ControlPath=${controlPath}`, "-O", "check"], [], { timeoutMs: 5000 })
    const pid = /pid=(\d+)/.exec(check.stderr + check.stdout)?.[1]
    await ssh(["-o", `ControlPath=${controlPath}`, "-O", "exit"], [], { timeoutMs: 5000 })
    if (pid && alive(Number(pid))) process.kill(Number(pid), "SIGKILL")
  })
  return { base, env, ssh, control, daemon }
}

// ---------------------------------------------------------------------------------------------------------------
// The measurements.

const timeLoop = async (what, n, once) => {
  const samples = []
  for (let i = 0; i < n; i++) {
    const r = await once()
    if (r.code !== 0) throw new Error(`${what}: run ${i + 1} failed (exit ${r.code ?? r.signal}): ${r.stderr.trim()}`)
    samples.push(r.ms)
  }
  return summarize(samples)
}

/** Runs one throughput transfer and checks that every byte arrived. */
const transfer = async (what, bytes, start) => {
  const r = await start(bytes)
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code ?? r.signal}: ${r.stderr.trim()}`)
  if (r.bytes !== bytes) throw new Error(`${what}: got ${r.bytes} bytes, expected ${bytes}`)
  return { bytes, ms: r.ms, mbps: mbps(bytes, r.ms) }
}

/** The machine gate's cost per exec (decision + audit line), from `bench/gate.mjs` in its own process. */
const gateCost = async () => {
  const r = mustSucceed(
    "gate bench",
    await run(process.execPath, [join(root, "bench", "gate.mjs"), "5000", "--json"], { timeoutMs: 300_000 })
  )
  return JSON.parse(r.stdout)
}
const gateRows = (g) =>
  g === undefined
    ? []
    : [
        [
          "gate per exec (argv), median / p99",
          latency({ median: g["argv allow"].p50_ms, p99: g["argv allow"].p99_ms }),
          ""
        ],
        [
          "gate per exec (sh -c), median / p99",
          latency({ median: g["sh -c line"].p50_ms, p99: g["sh -c line"].p99_ms }),
          ""
        ]
      ]

const main = async () => {
  const results = {
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, kernel: release() },
    config,
    cmdop: {},
    openssh: { available: false },
    notes
  }

  if (!existsSync(join(root, "packages", "cli", "dist", "cmdop.mjs"))) {
    log("building the CLI (node scripts/build.mjs)")
    mustSucceed("build", await run(process.execPath, [join(root, "scripts", "build.mjs")], { timeoutMs: 120_000 }))
  }
  log(`temp dir ${tmp}`)
  // The cluster phase starts relays of its own (after this function).
  if ([...phases].every((p) => p === "cluster")) {
    results.openssh.reason = "not measured (BENCH_PHASES=cluster)"
    return results
  }
  const tools = await bundleBenchTools()
  results.cmdop.gate = await gateCost()

  // --- the system under test
  const relay = await startRelay("relay", "bench")
  const hostname = "bench-agent"
  const agent = await startAgent(relay, hostname)
  log(`relay ${relay.server} (pid ${relay.pid}), agent ${hostname} (pid ${agent.pid}) online`)
  await sleep(500)
  results.cmdop.agentIdleRssKiB = rssKiB(agent.pid)
  results.cmdop.relayIdleRssKiB = rssKiB(relay.pid)

  let ssh
  if (skipSsh) results.openssh.reason = "skipped (BENCH_SKIP_SSH=1)"
  else {
    try {
      ssh = await startSsh()
      results.openssh.available = true
      results.openssh.version = spawnSync("ssh", ["-V"], { encoding: "utf8" }).stderr.trim()
      log(`sshd on 127.0.0.1 (pid ${ssh.daemon.pid}) accepts logins`)
    } catch (e) {
      results.openssh.reason = e instanceof Error ? e.message : String(e)
      log(`OpenSSH unavailable: ${results.openssh.reason}`)
    }
  }

  const cliHome = join(tmp, "cli-home")
  const execTrue = () =>
    cmdop(["connect", "exec", hostname, "-k", relay.apiKey, "-s", relay.server, "--", "true"], cliHome)

  // --- 1a. cold: a new CLI process / a new ssh connection per run (2 untimed warm-up runs each)
  if (phases.has("cold")) {
    log(`exec cold: ${config.coldN} × cmdop connect exec … true`)
    await timeLoop("cmdop cold warm-up", 2, execTrue)
    results.cmdop.cold = await timeLoop("cmdop cold", config.coldN, execTrue)
    if (ssh) {
      log(`exec cold: ${config.coldN} × ssh 127.0.0.1 true`)
      await timeLoop("ssh cold warm-up", 2, () => ssh.ssh([], ["true"]))
      results.openssh.cold = await timeLoop("ssh cold", config.coldN, () => ssh.ssh([], ["true"]))
    }
  }

  // --- 1b. warm: one RelayClient in-process / one ssh ControlMaster connection
  if (phases.has("warm")) {
    log(`exec warm: ${config.warmN} × RelayClient.exec(true) in one process`)
    const { result: warm, cpu: warmCpu } = await withCpu([relay, agent], async () =>
      mustSucceed(
        "warm-exec",
        await run(
          process.execPath,
          [tools.warmExec, "latency", relay.server, relay.apiKey, hostname, String(config.warmN)],
          { timeoutMs: 120_000 + (config.warmN + config.warmWarmup) * 1000 }
        )
      )
    )
    const warmOut = JSON.parse(warm.stdout)
    results.cmdop.warm = summarize(warmOut.samples)
    results.cmdop.warmFirst = firstOf(warmOut.warmup, FIRST_EXECS)
    // warm-exec runs its warm-up calls before the timed ones; all of them cost the relay and the agent.
    const execs = config.warmN + config.warmWarmup
    results.cmdop.cpuPerExecMs = { relay: warmCpu[0] / execs, agent: warmCpu[1] / execs }
    if (ssh) {
      log(`exec warm: ${config.warmN} × ssh (ControlMaster) 127.0.0.1 true`)
      mustSucceed("ssh master", await ssh.ssh(ssh.control, ["true"], { stdio: ["ignore", "ignore", "pipe"] }))
      const sshWarm = () => ssh.ssh(ssh.control, ["true"])
      const first = Math.min(FIRST_EXECS, config.warmWarmup)
      results.openssh.warmFirst = first === 0 ? undefined : await timeLoop("ssh warm warm-up", first, sshWarm)
      await timeLoop("ssh warm warm-up", config.warmWarmup - first, sshWarm)
      results.openssh.warm = await timeLoop("ssh warm", config.warmN, sshWarm)
    }
  }

  // --- 1c. keystroke echo: one byte into a PTY running cat, until it comes back (bench/echo.ts, both sides)
  const echoTimeoutMs = 60_000 + (config.echoN + config.echoWarmup) * 200
  if (phases.has("echo")) {
    log(`keystroke echo: ${config.echoN} × one byte through RelayClient.attach (PTY, cat)`)
    const { result: echoCmdop, cpu: echoCpu } = await withCpu([relay, agent], async () =>
      mustSucceed(
        "echo (cmdop)",
        await run(process.execPath, [tools.echo, "cmdop", String(config.echoN), relay.server, relay.apiKey, hostname], {
          timeoutMs: echoTimeoutMs
        })
      )
    )
    const echoOut = JSON.parse(echoCmdop.stdout)
    results.cmdop.echo = summarize(echoOut.samples)
    results.cmdop.echoFirst = firstOf(echoOut.warmup, FIRST_KEYSTROKES)
    // echo.ts runs its warm-up rounds first; the session's opening and end are in the figure too (a few rounds' worth).
    const keystrokes = config.echoN + config.echoWarmup
    results.cmdop.cpuPerKeystrokeMs = { relay: echoCpu[0] / keystrokes, agent: echoCpu[1] / keystrokes }
    if (ssh) {
      log(`keystroke echo: ${config.echoN} × one byte through ssh -tt (ControlMaster, PTY, cat)`)
      const echoSsh = mustSucceed(
        "echo (ssh)",
        await run(
          process.execPath,
          [tools.echo, "ssh", String(config.echoN), "--", ...ssh.base, ...ssh.control, "-tt", "127.0.0.1"],
          { env: { ...ssh.env, TERM: "xterm-256color" }, timeoutMs: echoTimeoutMs }
        )
      )
      const echoSshOut = JSON.parse(echoSsh.stdout)
      results.openssh.echo = summarize(echoSshOut.samples)
      results.openssh.echoFirst = firstOf(echoSshOut.warmup, FIRST_KEYSTROKES)
    }
  }

  // --- 2. throughput: head -c BYTES /dev/zero to a byte counter in this process
  const cliTransfer = (bytes) =>
    cmdop(
      [
        "connect",
        "exec",
        hostname,
        "-k",
        relay.apiKey,
        "-s",
        relay.server,
        // The CLI kills a remote command after 30 s by default; a slow transfer may take longer.
        "--timeout",
        "10m",
        "--",
        "head",
        "-c",
        String(bytes),
        "/dev/zero"
      ],
      cliHome,
      { count: true, timeoutMs: 600_000 }
    )
  if (phases.has("throughput")) {
    const probeBytes = Math.min(PROBE_BYTES, config.bytes)
    const probe = await transfer("cmdop throughput probe", probeBytes, cliTransfer)
    let cmdopBytes = config.bytes
    // BENCH_NO_CAP=1: the full BENCH_BYTES however slow (figures that compare runs on a busy machine).
    if (probe.mbps < SLOW_MBPS && config.bytes > SLOW_CAP && process.env.BENCH_NO_CAP !== "1") {
      cmdopBytes = SLOW_CAP
      notes.push(
        `cmdop throughput probe (${probeBytes / MiB} MiB) ran at ${probe.mbps.toFixed(1)} MB/s, below ${SLOW_MBPS} MB/s: ` +
          `the cmdop transfers were capped at ${SLOW_CAP / MiB} MiB instead of ${fmtBytes(config.bytes)}`
      )
    }
    log(`throughput: cmdop CLI, ${fmtBytes(cmdopBytes)}`)
    const cliRun = await withCpu([relay, agent], () => transfer("cmdop throughput (CLI)", cmdopBytes, cliTransfer))
    results.cmdop.throughputCli = { ...cliRun.result, capped: cmdopBytes < config.bytes }
    results.cmdop.cpuPerMbCliMs = {
      relay: cliRun.cpu[0] / (cmdopBytes / 1e6),
      agent: cliRun.cpu[1] / (cmdopBytes / 1e6)
    }
    log(`throughput: cmdop RelayClient in-process, ${fmtBytes(cmdopBytes)}`)
    const { result: lib, cpu: libCpu } = await withCpu([relay, agent], async () =>
      mustSucceed(
        "warm-exec throughput",
        await run(
          process.execPath,
          [tools.warmExec, "throughput", relay.server, relay.apiKey, hostname, String(cmdopBytes)],
          { timeoutMs: 600_000 }
        )
      )
    )
    results.cmdop.cpuPerMbLibraryMs = { relay: libCpu[0] / (cmdopBytes / 1e6), agent: libCpu[1] / (cmdopBytes / 1e6) }
    const libResult = JSON.parse(lib.stdout)
    if (libResult.bytes !== cmdopBytes) throw new Error(`library throughput: got ${libResult.bytes} bytes`)
    results.cmdop.throughputLibrary = {
      bytes: libResult.bytes,
      ms: libResult.ms,
      mbps: mbps(libResult.bytes, libResult.ms),
      chunks: libResult.chunks,
      capped: cmdopBytes < config.bytes
    }
    results.cmdop.relayRssEndKiB = rssKiB(relay.pid)
    const ended = performance.now()
    if (ssh) {
      log(`throughput: ssh, ${fmtBytes(config.bytes)}`)
      results.openssh.throughput = await transfer("ssh throughput", config.bytes, (bytes) =>
        ssh.ssh([], ["head", "-c", String(bytes), "/dev/zero"], { count: true, timeoutMs: 600_000 })
      )
    }
    // The relay gives its C heap back once a burst is over (HeapTrim, within ~2 s): read it again 5 s after the
    // transfers' end (the ssh transfer, if any, takes part of that time).
    await sleep(Math.max(0, RSS_SETTLE_MS - (performance.now() - ended)))
    results.cmdop.agentRssAfterKiB = rssKiB(agent.pid)
    results.cmdop.relayRssAfterKiB = rssKiB(relay.pid)
    results.cmdop.transferredBytes = 2 * cmdopBytes + probeBytes
  }
  await stopDaemon(agent)
  await stopDaemon(relay)

  // --- 3. idle agents on a fresh relay: half of them, then the rest (the second half's cost is the marginal one)
  if (!phases.has("idle")) {
    // `BENCH_PHASES=many` alone: the 10,000-agent phase without the 200-agent one.
    if (config.manyAgents > 0 && phases.has("many")) results.cmdop.manyAgents = await manyIdleAgents(tools)
    return results
  }
  log(`idle agents: ${config.agents} simulated agents on a fresh relay`)
  // BENCH_IDLE_HEAP=<dir>: the idle relay writes a heap snapshot there once all agents are connected.
  const heapDir = process.env.BENCH_IDLE_HEAP || undefined
  const relay2 = await startRelay(
    "relay-idle",
    "idle",
    heapDir ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${heapDir}`] : []
  )
  await sleep(2000)
  const before = rssKiB(relay2.pid)
  const half = Math.max(1, Math.floor(config.agents / 2))
  const sims = startDaemon(
    "sim-agents",
    process.execPath,
    [tools.simAgents, relay2.server, relay2.apiKey, String(half), "16"],
    envWith(join(tmp, "sim-home")),
    { stdin: "pipe" }
  )
  const simBatch = (index) =>
    waitFor(
      "the simulated agents to connect",
      () => {
        if (!running.has(sims.pid)) throw new Error(`sim-agents exited: ${sims.log().trim()}`)
        const line = sims
          .log()
          .split("\n")
          .filter((l) => l.startsWith("{"))[index]
        return line ? JSON.parse(line) : undefined
      },
      60_000 + config.agents * 200,
      200
    )
  const settle = 3000
  const firstBatch = await simBatch(0)
  await sleep(settle)
  const middle = rssKiB(relay2.pid)
  let secondBatch = { connected: 0, failed: 0, ms: 0, errors: [] }
  if (config.agents > half) {
    sims.stdin.write(`${config.agents - half}\n`)
    secondBatch = await simBatch(1)
    await sleep(settle)
  }
  const after = rssKiB(relay2.pid)
  const connected = firstBatch.connected + secondBatch.connected
  const listed = await listMachines(relay2.server, relay2.apiKey)
  const online = listed.filter((m) => m.online && m.hostname.startsWith("sim-")).length
  if (heapDir) {
    process.kill(relay2.pid, "SIGUSR2")
    // Written once the relay is done with it: non-empty and no longer growing.
    const sizes = () =>
      readdirSync(heapDir)
        .filter((f) => f.endsWith(".heapsnapshot"))
        .map((f) => statSync(join(heapDir, f)).size)
        .join(",")
    let last = ""
    for (let i = 0; i < 120; i++) {
      await sleep(2000)
      const now = sizes()
      if (now !== "" && !now.split(",").includes("0") && now === last) break
      last = now
    }
  }
  results.cmdop.idleAgents = {
    requested: config.agents,
    connected,
    failed: firstBatch.failed + secondBatch.failed,
    errors: [...firstBatch.errors, ...secondBatch.errors].slice(0, 5),
    online,
    connectMs: firstBatch.ms + secondBatch.ms,
    relayRssBeforeKiB: before,
    relayRssHalfKiB: middle,
    relayRssAfterKiB: after,
    perAgentKiB: (after - before) / Math.max(1, connected),
    marginalPerAgentKiB: secondBatch.connected > 0 ? (after - middle) / secondBatch.connected : undefined,
    simulatorRssKiB: rssKiB(sims.pid)
  }
  if (online !== config.agents) notes.push(`only ${online} of ${config.agents} simulated agents were listed online`)
  if (connected !== config.agents)
    notes.push(`${config.agents - connected} simulated agents failed to connect: ${results.cmdop.idleAgents.errors[0]}`)
  await stopDaemon(sims)
  await stopDaemon(relay2)

  if (config.manyAgents > 0 && phases.has("many")) results.cmdop.manyAgents = await manyIdleAgents(tools)
  return results
}

/** This process's descriptor limits, `{ soft, hard }` (`/proc/self/limits`; children inherit them). */
const ownNofile = () => {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"))
    const [soft, hard] = line
      .split(/\s{2,}/)
      .slice(1, 3)
      .map((x) => (x === "unlimited" ? Infinity : Number(x)))
    return { soft, hard }
  } catch {
    return { soft: 1024, hard: 1024 }
  }
}

/** `[cmd, args]` run with a soft descriptor limit of `nofile` (through `sh -c ulimit`), or unchanged. */
const withNofile = (nofile, cmd, args) =>
  nofile === undefined ? [cmd, args] : ["/bin/sh", ["-c", 'ulimit -n "$0" && exec "$@"', String(nofile), cmd, ...args]]

/** Descriptors the relay needs for `agents` gRPC connections: its reserve (512), and the gRPC port's 3/4 share. */
const relayNofileFor = (agents) => 512 + Math.ceil(((agents + 64) * 4) / 3) + 8

/**
 * How many of `wanted` agents the descriptor limits allow (the relay's, and the simulator's: one socket each), and
 * the soft limit to give both children (raised up to the hard limit when needed; never lowered).
 */
const descriptors = (wanted) => {
  const { soft, hard } = ownNofile()
  const need = Math.max(relayNofileFor(wanted), wanted + 256)
  if (need <= soft) return { agents: wanted, nofile: undefined, soft, hard, need }
  const nofile = Math.min(need, hard)
  let agents = wanted
  while (agents > 0 && Math.max(relayNofileFor(agents), agents + 256) > nofile) agents -= 100
  return { agents: Math.max(0, agents), nofile, soft, hard, need }
}

/**
 * Many idle agents on one fresh relay, added in batches of `BENCH_MANY_BATCH` up to `BENCH_MANY_AGENTS`; stops early
 * when a batch does not fully connect, a process dies, or the relay's RSS passes `BENCH_MANY_RSS_LIMIT_MIB`.
 * Records the relay's RSS after each batch (the curve) and how many agents it took. Every simulated agent comes
 * from 127.0.0.1, as agents behind a TCP load balancer do: the relay runs with `--max-connections-per-source` above
 * their number, and with the descriptors they need (checked here; too low a hard limit is said in a note).
 */
const manyIdleAgents = async (tools) => {
  const fds = descriptors(config.manyAgents)
  const target = fds.agents
  log(
    `many idle agents: up to ${target} simulated agents, ${config.manyBatch} at a time; descriptor limit ` +
      `${fds.soft} soft / ${fds.hard} hard, ${fds.need} needed` +
      (fds.nofile === undefined ? "" : `: the relay and the simulator run with ulimit -n ${fds.nofile}`)
  )
  if (target < config.manyAgents)
    notes.push(
      `many idle agents: the descriptor limit (hard ${fds.hard}) allows ${target} of ${config.manyAgents} agents; ` +
        `${fds.need} are needed (raise it: ulimit -Hn, or LimitNOFILE)`
    )
  if (target <= 0) return undefined
  const relay = await startRelay("relay-many", "many", ["--max-old-space-size=8192"], {
    serveArgs: ["--max-connections-per-source", String(target + 64)],
    nofile: fds.nofile
  })
  await sleep(2000)
  const curve = [{ agents: 0, relayRssKiB: rssKiB(relay.pid) }]
  const first = Math.min(config.manyBatch, target)
  const sims = startDaemon(
    "sim-many",
    ...withNofile(fds.nofile, process.execPath, [
      "--max-old-space-size=8192",
      tools.simAgents,
      relay.server,
      relay.apiKey,
      String(first),
      "32"
    ]),
    envWith(join(tmp, "sim-home")),
    { stdin: "pipe" }
  )
  let connected = 0
  let stopped
  for (let batch = 0; connected < target; batch++) {
    if (batch > 0) sims.stdin.write(`${Math.min(config.manyBatch, target - connected)}\n`)
    const line = await waitFor(
      "a batch of simulated agents",
      () => {
        if (!running.has(sims.pid)) throw new Error(`sim-agents exited: ${sims.log().trim().slice(-500)}`)
        if (!running.has(relay.pid)) throw new Error(`the relay exited: ${relay.log().trim().slice(-500)}`)
        return sims
          .log()
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l))[batch]
      },
      120_000 + config.manyBatch * 200,
      500
    ).catch((e) => ({ error: e instanceof Error ? e.message : String(e) }))
    if (line.error !== undefined) {
      stopped = line.error
      break
    }
    connected += line.connected
    await sleep(3000)
    const relayRssKiB = rssKiB(relay.pid)
    curve.push({
      agents: connected,
      relayRssKiB,
      complete: line.failed === 0,
      connectMs: line.ms,
      simulatorRssKiB: Math.round(line.rss / 1024)
    })
    log(`many idle agents: ${connected} connected, relay RSS ${mib(relayRssKiB)}`)
    if (line.failed > 0) {
      stopped = `${line.failed} agents of batch ${batch + 1} failed: ${line.errors[0]}`
      break
    }
    if (relayRssKiB > config.manyRssLimitMiB * 1024) {
      stopped = `relay RSS passed BENCH_MANY_RSS_LIMIT_MIB (${config.manyRssLimitMiB} MiB)`
      break
    }
  }
  const online = connected > 0 ? (await listMachines(relay.server, relay.apiKey)).filter((m) => m.online).length : 0
  await stopDaemon(sims, 10_000)
  await stopDaemon(relay)
  // Per agent from the last step where every agent connected: after a failed batch the relay may be dropping some.
  const last = curve.findLast((p, i) => i > 0 && p.complete)
  if (stopped !== undefined) notes.push(`many idle agents stopped at ${connected}: ${stopped}`)
  return {
    requested: config.manyAgents,
    connected,
    online,
    stopped,
    curve,
    tookAll: last?.agents,
    perAgentKiB: last === undefined ? undefined : (last.relayRssKiB - curve[0].relayRssKiB) / last.agents
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Output.

function fmtBytes(bytes) {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`
  if (bytes >= MiB) return `${+(bytes / MiB).toFixed(1)} MiB`
  return `${bytes} B`
}
const fmtMs = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2))
const latency = (s) => (s ? `${fmtMs(s.median)} / ${fmtMs(s.p99)} ms` : "-")
const rate = (t) => (t ? `${t.mbps.toFixed(1)} MB/s (${fmtBytes(t.bytes)}${t.capped ? ", capped" : ""})` : "-")
const perProc = (x, unit, digits = 2) => (x ? `${x.relay.toFixed(digits)} / ${x.agent.toFixed(digits)} ${unit}` : "-")
const mib = (kib) => (kib === undefined ? "-" : `${(kib / 1024).toFixed(1)} MiB`)

const manyRows = (many) => {
  if (many === undefined) return []
  const curve = many.curve
  return [
    [
      `many idle agents on one relay (${many.requested})`,
      `${many.connected} connected, ${many.online} online at the end; ` +
        (many.perAgentKiB === undefined
          ? "no step fully connected"
          : `${many.perAgentKiB.toFixed(1)} KiB/agent at ${many.tookAll} (last step fully connected)`),
      ""
    ],
    ["  relay RSS by agents", curve.map((p) => `${p.agents}: ${mib(p.relayRssKiB)}`).join(", "), ""]
  ]
}

const printTable = (r) => {
  const ssh = r.openssh
  const na = ssh.available ? "-" : "n/a"
  const idle = r.cmdop.idleAgents
  const idleRows =
    idle === undefined
      ? []
      : [
          [
            "idle agents on one relay",
            `${idle.online}/${idle.requested} online, ${idle.perAgentKiB.toFixed(1)} KiB/agent`,
            ""
          ],
          [
            "  relay RSS: 0 → half → all agents",
            `${mib(idle.relayRssBeforeKiB)} → ${mib(idle.relayRssHalfKiB)} → ${mib(idle.relayRssAfterKiB)}`,
            ""
          ],
          [
            "  second half only (marginal)",
            idle.marginalPerAgentKiB === undefined ? "-" : `${idle.marginalPerAgentKiB.toFixed(1)} KiB/agent`,
            ""
          ]
        ]
  const rows = [
    ["", "cmdop", "OpenSSH"],
    [`exec cold, median / p99 (n=${r.config.coldN})`, latency(r.cmdop.cold), ssh.available ? latency(ssh.cold) : na],
    [`exec warm, median / p99 (n=${r.config.warmN})`, latency(r.cmdop.warm), ssh.available ? latency(ssh.warm) : na],
    [
      `  first ${FIRST_EXECS} calls after start`,
      latency(r.cmdop.warmFirst),
      ssh.available ? latency(ssh.warmFirst) : na
    ],
    [
      `keystroke echo, median / p99 (n=${r.config.echoN})`,
      latency(r.cmdop.echo),
      ssh.available ? latency(ssh.echo) : na
    ],
    [
      `  first ${FIRST_KEYSTROKES} rounds after start`,
      latency(r.cmdop.echoFirst),
      ssh.available ? latency(ssh.echoFirst) : na
    ],
    ["throughput, CLI / ssh to a pipe", rate(r.cmdop.throughputCli), ssh.available ? rate(ssh.throughput) : na],
    ["throughput, RelayClient in-process", rate(r.cmdop.throughputLibrary), ""],
    ["CPU per MB, relay / agent (CLI transfer)", perProc(r.cmdop.cpuPerMbCliMs, "ms"), ""],
    ["CPU per MB, relay / agent (in-process transfer)", perProc(r.cmdop.cpuPerMbLibraryMs, "ms"), ""],
    ["CPU per exec, relay / agent (warm exec)", perProc(r.cmdop.cpuPerExecMs, "ms"), ""],
    ["CPU per keystroke, relay / agent (echo)", perProc(r.cmdop.cpuPerKeystrokeMs, "ms", 3), ""],
    [
      `relay RSS idle → end of ${r.cmdop.transferredBytes === undefined ? "the transfers" : fmtBytes(r.cmdop.transferredBytes)} → ${RSS_SETTLE_MS / 1000} s after`,
      `${mib(r.cmdop.relayIdleRssKiB)} → ${mib(r.cmdop.relayRssEndKiB)} → ${mib(r.cmdop.relayRssAfterKiB)}`,
      ""
    ],
    ...idleRows,
    ["one real agent process, idle RSS", mib(r.cmdop.agentIdleRssKiB), ""],
    ...manyRows(r.cmdop.manyAgents),
    ...gateRows(r.cmdop.gate),
    ...clusterRows(r.cluster)
  ]
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((row) => row[c].length)))
  const out = rows.map((row) =>
    row
      .map((cell, c) => cell.padEnd(widths[c] + 3))
      .join("")
      .trimEnd()
  )
  process.stdout.write(`\n${out.join("\n")}\n\n`)
  process.stdout.write(
    `${r.machine.cpus} × ${r.machine.cpu}, Node ${r.machine.node}, Linux ${r.machine.kernel}` +
      `${ssh.available ? `, ${ssh.version}` : ""}\n`
  )
  if (!ssh.available) process.stdout.write(`OpenSSH: unavailable (${ssh.reason})\n`)
  if (r.cluster?.available === false) process.stdout.write(`cluster: unavailable (${r.cluster.reason})\n`)
  for (const note of r.notes) process.stdout.write(`note: ${note}\n`)
}

const watchdog = setTimeout(() => {
  log(`BENCH_TIMEOUT (${config.timeoutS} s) reached: stopping`)
  cleanup().finally(() => process.exit(124))
}, config.timeoutS * 1000)
watchdog.unref()

let exitCode = 0
try {
  const results = await main()
  if (phases.has("cluster") && config.clusterAgents > 0) {
    log(`cluster: three relay nodes on PostgreSQL, ${config.clusterAgents} simulated agents (bench/cluster.mjs)`)
    results.cluster = await runCluster({
      agents: config.clusterAgents,
      tmp,
      env: baseEnv,
      track: (pid, name) => running.set(pid, name),
      untrack: (pid) => running.delete(pid),
      timeoutMs: config.timeoutS * 1000
    })
  }
  if (asJson) process.stdout.write(JSON.stringify(results, null, 2) + "\n")
  else printTable(results)
} catch (e) {
  exitCode = 1
  log(`failed: ${e instanceof Error ? e.message : String(e)}`)
  for (const name of ["relay", "agent", "relay-idle", "sim-agents", "relay-many", "sim-many", "sshd"]) {
    const path = join(tmp, `${name}.log`)
    if (existsSync(path)) {
      const text = readFileSync(path, "utf8").trim().split("\n").slice(-10).join("\n")
      if (text) log(`${name}.log (tail):\n${text}`)
    }
  }
} finally {
  await cleanup()
}
process.exit(exitCode)
