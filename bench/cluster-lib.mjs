// Plumbing for bench/cluster.mjs: a temp dir, long-lived processes in their own groups (all killed at the end), the
// benchmark database on PostgreSQL (one fresh database per run, dropped at the end), the bundled tools, and /proc
// readings (RSS, CPU time).
import { spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { bundleTools } from "./bundleTools.mjs"

export const root = join(dirname(fileURLToPath(import.meta.url)), "..")
export const cliBin = join(root, "bin", "cmdop")
export const tmp = mkdtempSync(join(tmpdir(), "cmdop-cluster-bench-"))
export const log = (line) => process.stderr.write(`[cluster] ${line}\n`)
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
/** CMDOP_* variables of the caller must not leak a credential or workspace into the benchmark. */
/**
 * The environment of every process started here. The cluster's figures count 10 untimed calls before each run of
 * the `warm-exec` tool (its runs alternate local and forwarded calls against nodes that stay up), not the 500 the
 * single-relay bench warms a fresh relay with.
 */
export const baseEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CMDOP_"))),
  BENCH_WARM_WARMUP: "10"
}

/** pid → name of every long-lived process still running. */
const running = new Map()

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL, through psql.

/** The admin URL (a database that exists); the benchmark's own database is created next to it. */
export const pgAdmin = process.env["CMDOP_BENCH_PG"] ?? "postgres://postgres@127.0.0.1:5432/test"
const pgServer = pgAdmin.replace(/\/[^/]*$/, "")
export const database = `cmdop_bench_${randomBytes(5).toString("hex")}`
export const databaseUrl = `${pgServer}/${database}`
let created = false

const psql = (sql, url = pgAdmin) => {
  const r = spawnSync("psql", [url, "-tAc", sql], { encoding: "utf8", timeout: 30_000 })
  if (r.error) throw new Error(r.error.code === "ENOENT" ? "psql is not installed" : r.error.message)
  if (r.status !== 0) throw new Error(r.stderr.trim() || `psql exited ${r.status}`)
  return r.stdout.trim()
}

/** Undefined when PostgreSQL answers at `pgAdmin`, else why not (for the "unavailable" rows). */
export const pgProblem = () => {
  try {
    psql("SELECT 1")
    return undefined
  } catch (e) {
    return `PostgreSQL at ${pgAdmin}: ${e.message.split("\n")[0]}`
  }
}

export const createDatabase = () => {
  psql(`CREATE DATABASE ${database}`)
  created = true
}

/** A query on the benchmark's database. */
export const query = (sql) => psql(sql, databaseUrl)

// ---------------------------------------------------------------------------------------------------------------
// Processes.

const signalAll = (signal, only = () => true) => {
  for (const [pid, name] of running) {
    if (!only(name)) continue
    try {
      process.kill(-pid, signal)
    } catch {}
  }
}

/**
 * Stops every process, drops the database. The simulated agents go first (SIGKILL: their reconnects would keep the
 * nodes busy), then SIGTERM, so a `--cpu-prof` node writes its profile: a node closing thousands of streams may
 * take a while to, so SIGKILL only after 120 s.
 */
export const cleanup = async () => {
  signalAll("SIGKILL", (name) => name.startsWith("sims-"))
  signalAll("SIGTERM")
  for (let i = 0; i < 1200 && running.size > 0; i++) await sleep(100)
  signalAll("SIGKILL")
  running.clear()
  if (created) {
    try {
      psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    } catch (e) {
      log(`could not drop ${database}: ${e.message}`)
    }
  }
  if (process.env["BENCH_KEEP_TMP"] !== "1") rmSync(tmp, { recursive: true, force: true })
}
process.on("exit", () => signalAll("SIGKILL"))
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => void cleanup().finally(() => process.exit(130)))

export const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })

export const logTail = (name, n = 800) => {
  try {
    return readFileSync(join(tmp, `${name}.log`), "utf8").slice(-n)
  } catch {
    return ""
  }
}

/** A long-lived `node <args>` in its own group; its stdout lines go to `onLine`, stderr to `<tmp>/<name>.log`. */
export const startProcess = (name, args, { env = baseEnv, onLine = () => {} } = {}) => {
  const fd = openSync(join(tmp, `${name}.log`), "a")
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ["pipe", "pipe", fd], detached: true })
  closeSync(fd)
  running.set(child.pid, name)
  child.on("exit", () => running.delete(child.pid))
  createInterface({ input: child.stdout }).on("line", onLine)
  return child
}

/** The first stdout line of a fresh process that `accept`s, once it is printed. */
export const firstLine = (name, args, options = {}, accept = () => true) =>
  new Promise((resolve, reject) => {
    let done = false
    const child = startProcess(name, args, {
      ...options,
      onLine: (line) => {
        if (!done && accept(line)) {
          done = true
          resolve({ child, line })
        }
        options.onLine?.(line)
      }
    })
    child.on("exit", (code) => {
      if (!done) reject(new Error(`${name} exited (${code}): ${logTail(name)}`))
    })
  })

/** Runs `node <args>` to its end; its last stdout line as JSON. */
export const runTool = (args, env = baseEnv, timeoutMs = 300_000) =>
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

/** The CLI (`bin/cmdop`, the built bundle) to its end: `{ code, stdout, stderr }`. */
export const cmdop = (args, env = baseEnv) => {
  const r = spawnSync(process.execPath, [cliBin, ...args], { cwd: root, env, encoding: "utf8", timeout: 120_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

// ---------------------------------------------------------------------------------------------------------------
// /proc.

export const rssOf = (pid) => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
}

const clockTicks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100
/** CPU time (user + system) a process has used so far, in ms (`/proc/<pid>/stat`). */
export const cpuMs = (pid) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks
  } catch {
    return 0
  }
}

export const quantile = (samples, q) => {
  const s = [...samples].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]
}

/** `cmdop relay serve` as one node of the bench cluster: its name, ports and the shared PostgreSQL database. */
export const serveArgs = ({ name, grpc, http, peer }) => [
  cliBin,
  "relay",
  "serve",
  "--json",
  "--db",
  databaseUrl,
  "--node-id",
  name,
  "--host",
  "127.0.0.1",
  "--grpc-port",
  String(grpc),
  "--http-port",
  String(http),
  "--peer-port",
  String(peer),
  "--peer-address",
  `127.0.0.1:${peer}`
]

/**
 * A real agent (`agent start --foreground`) on the node at `grpc`, for exec; resolves with its machine name once an
 * exec through that node (the bundled `warm-exec` tool at `warmExec`) answers.
 */
export const startAgent = async (grpc, key, warmExec) => {
  startProcess("agent", [cliBin, "agent", "start", "--foreground", "--server", grpc], {
    env: { ...baseEnv, HOME: join(tmp, "agent-home"), CMDOP_API_KEY: key }
  })
  const machine = spawnSync("hostname", { encoding: "utf8" }).stdout.trim()
  for (let i = 0; ; i++) {
    try {
      await runTool([warmExec, "latency", grpc, key, machine, "1"], baseEnv, 30_000)
      return machine
    } catch (e) {
      if (i > 100) throw new Error(`the agent never came online: ${e.message}`)
      await sleep(200)
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The tools, bundled with esbuild into the temp dir (the settings of scripts/build.mjs).

export const bundle = async () => {
  const outdir = join(tmp, "tools")
  await bundleTools({
    entryPoints: {
      "cluster-sims": "bench/cluster-sims.ts",
      "warm-exec": "bench/warm-exec.ts",
      "cluster-rtt": "bench/cluster-rtt.ts"
    },
    outdir,
    packages: ["cli", "protocol", "agent"]
  })
  return (name) => join(outdir, `${name}.mjs`)
}
