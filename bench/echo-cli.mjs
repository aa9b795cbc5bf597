// The keystroke echo as a person at the CLI feels it: `cmdop connect <host>` in a real local terminal (a PTY from
// node-pty, as a terminal emulator gives one), a relay and an agent daemon of this checkout on loopback, and on the
// machine the same `stty -icanon -echo min 1 time 0; exec cat` as `echo.ts`. After the warm-up, each round types
// one byte and times until it is back on the terminal; prints p50 / p90 / p99 and the CLI process's CPU per
// keystroke (/proc/<pid>/stat). `node bench/echo-cli.mjs [--json]`; ECHO_CLI_N=3000, ECHO_CLI_WARMUP=1000,
// ECHO_CLI_ROOT=<another built checkout> for its CLI against this checkout's relay and agent (an A/B of the CLI),
// ECHO_CLI_ROUNDS=1. Every process it starts is stopped at the end; nothing outside its temp dir is touched.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { agentOnline, cleanEnv, freePort, processes, registerOnceUp, sleep } from "./localProcesses.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const pty = createRequire(join(root, "packages", "agent", "package.json"))("@lydell/node-pty")
const cliBin = join(process.env.ECHO_CLI_ROOT || root, "bin", "cmdop")
const ownBin = join(root, "bin", "cmdop")
const n = Number(process.env.ECHO_CLI_N || 3000)
const warmup = Number(process.env.ECHO_CLI_WARMUP || 1000)
const rounds = Number(process.env.ECHO_CLI_ROUNDS || 1)
const MARKER = "ECHO-READY"
const tmp = mkdtempSync(join(tmpdir(), "cmdop-echo-cli-"))
const baseEnv = cleanEnv()
const { run, daemon: start, stopAll } = processes({ tmp, env: baseEnv })
const cmdop = (args, home) => run(ownBin, args, home)
const daemon = (name, args, home) => start(name, [ownBin, ...args], home)

const cpuMs = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** One attach in a fresh local terminal: the samples of `n` timed rounds and the CLI's CPU per keystroke. */
const measure = async (server, key, home) => {
  const term = pty.spawn(process.execPath, [cliBin, "connect", "-k", key, "-s", server, "echo-box"], {
    cols: 80,
    rows: 24,
    env: { ...baseEnv, HOME: home, TERM: "xterm-256color" }
  })
  let screen = ""
  let waiter
  term.onData((d) => {
    screen += d
    if (waiter?.until()) {
      const w = waiter
      waiter = undefined
      w.resolve()
    }
  })
  const until = (what, predicate, ms = 10_000) =>
    predicate()
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${what}: got ${JSON.stringify(screen.slice(-200))}`)), ms)
          waiter = { until: predicate, resolve: () => (clearTimeout(timer), resolve()) }
        })
  try {
    await until("the shell", () => /attached to echo-box/.test(screen), 30_000)
    await sleep(500)
    term.write(`stty -icanon -echo min 1 time 0 && printf ${MARKER} && exec cat\r`)
    await until("the marker", () => screen.lastIndexOf(MARKER) > screen.lastIndexOf("exec cat") + 8)
    await sleep(300)
    const samples = []
    let before = 0
    for (let i = 0; i < warmup + n; i++) {
      if (i === warmup) before = cpuMs(term.pid)
      const at = screen.length
      const ch = String.fromCharCode(0x61 + (i % 26))
      const t0 = performance.now()
      term.write(ch)
      await until(`echo of round ${i + 1}`, () => screen.length > at, 5_000)
      const ms = performance.now() - t0
      if (screen[at] !== ch) throw new Error(`round ${i + 1}: sent ${ch}, got ${JSON.stringify(screen.slice(at))}`)
      if (i >= warmup) samples.push(ms)
    }
    const cpuPerKeyMs = (cpuMs(term.pid) - before) / n
    term.write("\x03")
    await sleep(300)
    return { samples, cpuPerKeyMs }
  } finally {
    term.kill()
  }
}

const main = async () => {
  const adminHome = join(tmp, "admin")
  const agentHome = join(tmp, "agent")
  mkdirSync(adminHome)
  mkdirSync(agentHome)
  const dataDir = join(tmp, "relay")
  const key = JSON.parse(
    cmdop(["relay", "workspace", "create", "echo", "--json", "--data-dir", dataDir], adminHome)
  ).api_key
  const grpcPort = await freePort()
  const httpPort = await freePort()
  const args = ["--host", "127.0.0.1", "--grpc-port", String(grpcPort), "--http-port", String(httpPort)]
  daemon("relay", ["relay", "serve", ...args, "--data-dir", dataDir], adminHome)
  const server = `127.0.0.1:${grpcPort}`
  await registerOnceUp(() => cmdop(["agent", "register", "--hostname", "echo-box", "-k", key, "-s", server], agentHome))
  daemon("agent", ["agent", "start", "--foreground", "-k", key, "-s", server], agentHome)
  await agentOnline(agentHome)
  const results = []
  for (let r = 0; r < rounds; r++) results.push(await measure(server, key, join(tmp, "admin")))
  const q = (xs, p) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))]
  const summary = results.map(({ samples, cpuPerKeyMs }) => ({
    n: samples.length,
    p50: +q(samples, 0.5).toFixed(3),
    p90: +q(samples, 0.9).toFixed(3),
    p99: +q(samples, 0.99).toFixed(3),
    cliCpuPerKeystrokeMs: +cpuPerKeyMs.toFixed(3)
  }))
  if (process.argv.includes("--json")) process.stdout.write(JSON.stringify(summary) + "\n")
  else
    for (const s of summary)
      process.stdout.write(
        `CLI echo (n=${s.n}): p50 ${s.p50} ms, p90 ${s.p90} ms, p99 ${s.p99} ms; CLI CPU per keystroke ${s.cliCpuPerKeystrokeMs} ms\n`
      )
}

try {
  await main()
} finally {
  await stopAll()
  rmSync(tmp, { recursive: true, force: true })
}
