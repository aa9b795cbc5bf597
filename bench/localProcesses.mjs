// The processes of a bench run on this machine, for the scripts that start a relay and an agent of their own
// (`agent-rss.mjs`, `echo-cli.mjs`): a free loopback port, a `cmdop` command run to its end, daemons in process
// groups of their own (stdout and stderr in `<tmp>/<name>.log`), a wait for a condition, and stopping them (SIGTERM
// to the group, SIGKILL after 5 s). `env` is the environment every process gets, plus its own HOME.
import { spawn, spawnSync } from "node:child_process"
import { closeSync, openSync, readFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** The caller's environment without CMDOP_* (no credential or workspace of the caller's leaks into a run). */
export const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CMDOP_")))

export const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

/** Polls `probe` every 50 ms until it answers something truthy; fails naming `what` after `timeoutMs`. */
export const waitFor = async (what, probe, timeoutMs) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** Runs `register` (an `agent register` against a relay just started) until the relay takes it. */
export const registerOnceUp = (register) =>
  waitFor(
    "the relay to accept a registration",
    () => {
      try {
        register()
        return true
      } catch {
        return false
      }
    },
    30_000
  )

/**
 * Waits until the agent daemon whose HOME is `home` reports itself ONLINE; `failed()` answers why when the daemon
 * exited first (its log), else `undefined`.
 */
export const agentOnline = (home, failed = () => undefined) =>
  waitFor(
    "the agent to be ONLINE",
    () => {
      const why = failed()
      if (why !== undefined) throw new Error(why)
      try {
        return readFileSync(join(home, ".cmdop", "daemon.status"), "utf8").includes("ONLINE")
      } catch {
        return false
      }
    },
    60_000
  )

export const processes = ({ tmp, env }) => {
  const children = new Set()
  /** `node <bin> <args…>` to its end; its stdout, or an error with its stderr. */
  const run = (bin, args, home) => {
    const r = spawnSync(process.execPath, [bin, ...args], { env: { ...env, HOME: home }, encoding: "utf8" })
    if (r.status !== 0) throw new Error(`cmdop ${args.join(" ")}: exit ${r.status}: ${r.stderr}`)
    return r.stdout
  }
  /** `node <argv…>` in a process group of its own, running until stopped. */
  const daemon = (name, argv, home) => {
    const fd = openSync(join(tmp, `${name}.log`), "a")
    const child = spawn(process.execPath, argv, {
      env: { ...env, HOME: home },
      stdio: ["ignore", fd, fd],
      detached: true
    })
    closeSync(fd)
    children.add(child)
    child.on("exit", () => children.delete(child))
    return child
  }
  const stop = async (child) => {
    if (!children.has(child)) return
    const exited = new Promise((resolve) => child.once("exit", resolve))
    try {
      process.kill(-child.pid, "SIGTERM")
    } catch {
      return
    }
    if ((await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])) === false)
      process.kill(-child.pid, "SIGKILL")
  }
  const stopAll = async () => {
    for (const child of [...children]) await stop(child)
  }
  return { children, run, daemon, stop, stopAll }
}
