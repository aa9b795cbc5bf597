/**
 * Starting one command, three ways, in a process the size of a busy agent (~90 MiB): `child_process.spawn` (a fork
 * of the whole process), a warm shell (`internal/warmShells.ts`: forked ahead, then handed the command) and
 * `posix_spawn` (`@cmdop/node/PosixSpawn`: no copy of the page tables). For each, the time from asking to the
 * child's `close` (exited, pipes closed) and this process's CPU per command, the warm shell's fork ahead of need
 * included. Rounds alternate the three. Prints one JSON line per way.
 */
import * as PosixSpawn from "@cmdop/node/PosixSpawn"
import * as ChildProcess from "node:child_process"
import * as os from "node:os"
import { withoutAgentSecrets } from "../packages/agent/src/internal/sessionEnv.js"
import * as WarmShells from "../packages/agent/src/internal/warmShells.js"

const N = Number(process.argv[2] ?? 300)
const ROUNDS = Number(process.argv[3] ?? 3)

// Ballast: a heap like a busy agent's (the fork copies the page tables of all of it).
const ballast: Array<unknown> = []
for (let i = 0; i < 200_000; i++) ballast.push({ i, s: `x${i}`, a: [i, i] })

type Child = {
  stdin: NodeJS.WritableStream | null
  stdout: NodeJS.ReadableStream | null
  stderr: NodeJS.ReadableStream | null
  once(e: "close", f: () => void): unknown
}
const closed = (child: Child) =>
  new Promise<void>((resolve) => {
    child.stdout!.resume()
    child.stderr!.resume()
    child.once("close", resolve)
    child.stdin!.end()
  })

const env = withoutAgentSecrets(process.env)
const home = os.homedir()
const spawner = await PosixSpawn.load()
if (spawner === undefined) throw new Error("posix_spawn cannot be bound here")
const shells = WarmShells.make(() => env, home)
if (shells === undefined) throw new Error("/bin/sh is not dash: no warm shells here")

const ways: Record<string, () => Promise<void>> = {
  fork: () =>
    closed(ChildProcess.spawn("/bin/true", [], { cwd: home, env, detached: true, stdio: ["pipe", "pipe", "pipe"] })),
  "warm shell": async () => {
    while (!shells.isReady()) await new Promise((resolve) => setTimeout(resolve, 2))
    await closed(shells.take({ argv: ["/bin/true"], shell: false }, home)!)
    // As the runner does once a command's pipes closed: the next shell is forked right after.
    shells.ended()
  },
  posix_spawn: () => closed(spawner.spawn("/bin/true", ["true"], env, home)!)
}

const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
const results: Record<string, { p50: Array<number>; cpu: Array<number> }> = {}
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(ways)) {
    const times: Array<number> = []
    const before = cpuMs()
    for (let i = 0; i < N; i++) {
      // A gap between commands, as between an agent's calls (the warm shell is forked in it); none with GAP=0.
      if (process.env.GAP !== "0") await new Promise((resolve) => setTimeout(resolve, 3))
      const t = performance.now()
      await run()
      times.push(performance.now() - t)
    }
    times.sort((a, b) => a - b)
    const r = (results[name] ??= { p50: [], cpu: [] })
    r.p50.push(+times[Math.floor(N / 2)]!.toFixed(3))
    r.cpu.push(+((cpuMs() - before) / N).toFixed(3))
  }
}
shells.close()
const rssMiB = +(process.memoryUsage().rss / 2 ** 20).toFixed(1)
for (const [name, r] of Object.entries(results))
  process.stdout.write(`${JSON.stringify({ way: name, rssMiB, p50Ms: r.p50, cpuMsPerCommand: r.cpu })}\n`)
process.exit(0)
