/**
 * The stage for the abuse suite: one real relay process (the bundled CLI's `relay serve`, SQLite store) on
 * 127.0.0.1, an attacker workspace and a victim workspace with a real agent, and the measurements the suite
 * asserts on: the relay's resident memory (sampled from `/proc/<pid>/status` while an attack runs) and the
 * victim's exec latency (p99 of sequential `true` runs through the relay and its real agent).
 */
import * as Processes from "@cmdop/testkit/Processes"
import { freePort } from "@cmdop/test-helpers/FreePort"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import type { RelayClient } from "@cmdop/domain/RelayClient"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export interface Stage {
  readonly pid: number
  readonly grpc: string
  readonly http: string
  readonly attackerKey: string
  readonly victimKey: string
  readonly attacker: RelayClient["Type"]
  readonly victim: RelayClient["Type"]
  /** A client of the relay with any credential. */
  readonly clientWith: (credential: string) => Effect.Effect<RelayClient["Type"], never, Scope.Scope>
  /** Latencies in ms of `count` sequential `exec victim-box -- true` by the victim's own process (`prober.mjs`). */
  readonly probe: (count: number) => Effect.Effect<ReadonlyArray<number>>
  /** `cmdop connect <args…>` (the bundled CLI, its own process) with `key` against the relay. */
  readonly cli: (key: string, args: ReadonlyArray<string>) => Effect.Effect<Processes.Result>
  /** How the relay, the victim's agent and its prober were placed (see `isolate`). */
  readonly isolated: "realtime" | "nice" | "none"
}

/** The relay's resident set size in MiB. */
export const rssMiB = (pid: number): number => {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return Math.round(kb / 1024)
}

/** CPU time (user + system) the relay has used so far, in ms. */
export const cpuMs = (pid: number): number => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
}

/** Samples the relay's RSS every 50 ms while `effect` runs; the effect's value and the peak seen. */
export const withPeakRss = <A, E, R>(pid: number, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    let peak = rssMiB(pid)
    const timer = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50)
    const value = yield* Effect.ensuring(
      effect,
      Effect.sync(() => clearInterval(timer))
    )
    return { value, peakMiB: Math.max(peak, rssMiB(pid)) }
  })

const p99 = (samples: ReadonlyArray<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!
}

/** p99 and median of latency samples, in whole ms. */
export const summary = (samples: ReadonlyArray<number>) => {
  const sorted = [...samples].sort((a, b) => a - b)
  return { p99: Math.round(p99(samples)), median: Math.round(sorted[Math.floor(sorted.length / 2)]!) }
}

/**
 * The bound the suite holds another tenant's exec to during an attack: its p99 within 2× the p99 measured idle
 * just before, with the same number of samples (`SAMPLES`), plus `P99_FLOOR_MS`. The floor only matters when the
 * idle p99 is a few ms: then the p99 (the third slowest of 200) is decided by two or three stray pauses — a
 * collection of the relay, the two cores busy elsewhere for a moment — landing in one window and not the other. With
 * a 5 ms floor a fresh clone's CI failed once on that alone: the revoked-link replays' victim at p99 18 ms against
 * an idle 6 ms (bound 17), its median unchanged at 3 ms, where three other runs the same day measured 7–9 ms. An
 * attack that costs the others does more than that: the floor is 10 ms.
 */
export const P99_FLOOR_MS = 10
export const p99Bound = (idleP99: number) => 2 * idleP99 + P99_FLOOR_MS

/**
 * Victim execs per measurement (idle and under attack alike). 200, so that the p99 is a percentile and not one of
 * the slowest couple of samples: with 100, the p99 was the second slowest run, and two stray pauses (a garbage
 * collection of the relay, ≤ 35 ms in the profiles; a fork of the agent) landing in one window and not the other
 * swung the idle p99 from 14 to 31 ms between windows on a quiet box, and failed the bound on CI with no attack
 * cost behind it (idle 15–16 ms, attack 39–40 ms against 35–37). With 200 the p99 is the third slowest.
 */
export const SAMPLES = 200

/**
 * The niceness the test process takes once the relay, the agent and the victim's prober run: it drives the
 * attacks and spawns the attacker processes (which inherit it). On a real deployment attackers are other machines;
 * on this one small box they must not take the CPU the victim's processes and the relay need, or the suite
 * measures the box instead of the relay. The relay itself keeps its normal priority: what an attack costs the
 * relay, it costs the victim.
 */
export const ATTACKER_NICENESS = 10

/** The real-time priority (round-robin, 1–99) of the relay, where allowed. */
export const REALTIME_PRIORITY = 10

/**
 * The real-time priority of the victim's agent and its prober: above the relay's. On a real deployment they run on
 * the victim's own machines and only the relay is shared; on this 2-core box a relay whose event loop and GC threads
 * fill both cores during an attack would otherwise keep the victim's agent off a core for a round-robin slice, and
 * the suite would measure the box's scheduler instead of the relay. The victim's calls still go through the relay's
 * one event loop, which is what the bound is about.
 */
export const VICTIM_REALTIME_PRIORITY = 20

/** Their niceness where real-time priority is not allowed but raising the priority is. */
export const SYSTEM_NICENESS = -10

/** Starts the victim's prober process for the life of the scope; `probe(n)` asks it for n samples. */
const prober = (grpc: string, victimKey: string) =>
  Effect.gen(function* () {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, [fileURLToPath(new URL("prober.mjs", import.meta.url)), grpc, victimKey, "victim-box"])
      ),
      (c) => Effect.sync(() => c.kill("SIGKILL"))
    )
    const waiting: Array<(line: string) => void> = []
    let buffered = ""
    child.stdout.on("data", (d: Buffer) => {
      buffered += d.toString()
      const lines = buffered.split("\n")
      buffered = lines.pop() ?? ""
      for (const line of lines) waiting.shift()?.(line)
    })
    const probe = (count: number) =>
      Effect.flatMap(
        Effect.async<string>((resume) => {
          waiting.push((line) => resume(Effect.succeed(line)))
          child.stdin.write(`${count}\n`)
        }),
        (line) => {
          const answer = JSON.parse(line) as { samples?: Array<number>; error?: string }
          return answer.samples !== undefined
            ? Effect.succeed(answer.samples)
            : Effect.die(new Error(`the victim's exec failed: ${answer.error}`))
        }
      )
    return { probe, pid: child.pid! }
  })

/**
 * Separates the experiment from the rest of the machine, so that unrelated load on a shared box (other test suites
 * on its two cores) does not decide the comparison — profiles of the relay under attack on a loaded box showed its
 * slow turns were time spent waiting for a core (a 400 ms turn with 6 ms of CPU in it), not work:
 * - the system under test — the relay, the victim's agent (and the commands it runs) and the victim's prober — runs
 *   at round-robin real-time priority where the platform allows it (`chrt`; the kernel still keeps 5% of every
 *   second for everything else), the victim's two above the relay (`VICTIM_REALTIME_PRIORITY`), else at
 *   `SYSTEM_NICENESS`, else as it is;
 * - the attackers — this process, and the attacker processes it spawns, which inherit its priority — run at
 *   `ATTACKER_NICENESS`: on a real deployment they are other machines, and must not take the relay's CPU here.
 * What an attack costs the relay's event loop still reaches the victim in full: its calls go through that loop.
 * Returns how the system was placed (reported with the figures).
 */
const isolate = (relay: number, victim: ReadonlyArray<number>): "realtime" | "nice" | "none" => {
  let placed: "realtime" | "nice" | "none" = "realtime"
  const system = [
    { pid: relay, priority: REALTIME_PRIORITY },
    ...victim.map((pid) => ({ pid, priority: VICTIM_REALTIME_PRIORITY }))
  ]
  // ABUSE_ISOLATION=none: measure without isolation, as on a platform that allows neither (to check that path).
  if (process.env["ABUSE_ISOLATION"] === "none") placed = "none"
  else
    for (const { pid, priority } of system) {
      try {
        execFileSync("chrt", ["--all-tasks", "--rr", "--pid", String(priority), String(pid)], {
          stdio: "ignore"
        })
      } catch {
        try {
          os.setPriority(pid, SYSTEM_NICENESS)
          if (placed === "realtime") placed = "nice"
        } catch {
          placed = "none"
        }
      }
    }
  os.setPriority(ATTACKER_NICENESS)
  if (placed === "none") console.log(NO_ISOLATION)
  return placed
}

/**
 * Said once, plainly, when neither real-time priority nor a negative niceness was allowed. The suite still runs and
 * still asserts the same bound (`p99Bound`: 2× the idle p99 plus the floor). Decided so because the bound is the
 * relay's contract (issue 9), not the box's: loosening it where isolation is missing would let a real regression
 * pass on exactly the machines (containers, CI) where `chrt` is denied. What isolation buys is protection from
 * load that is not the experiment's; the attackers themselves still run at `ATTACKER_NICENESS` (raising one's own
 * niceness is always allowed), and the idle p99 is measured just before each attack under the same ambient load.
 * So a failure here is either the relay or other load on the box: re-run on a quiet machine before blaming it.
 */
export const NO_ISOLATION =
  "[abuse] NOT ISOLATED: neither real-time priority (chrt) nor a negative niceness is allowed here (or " +
  "ABUSE_ISOLATION=none asked for none), so the relay, " +
  "the victim's agent and its prober run at normal priority beside everything else on this machine. The latency " +
  "bound (victim p99 within 2× idle + 5 ms) is still asserted, measured WITHOUT isolation: a failure may be other " +
  "load on this machine, not the relay."

const relayReady = /relay serving: grpc (\S+), http (\S+), store/

/** Starts the relay, two workspaces, and the victim's agent, for the life of the scope. */
export const stage = Effect.gen(function* () {
  const dir = yield* TempHome.make("cmdop-abuse-")
  const data = path.join(dir, "data")
  const grpcPort = yield* freePort
  const httpPort = yield* freePort
  // ABUSE_CPU_PROF=<dir>: the relay writes a V8 CPU profile there when it stops (to find what an attack costs it).
  const profile = process.env["ABUSE_CPU_PROF"]
  const relay = yield* Processes.daemon(
    dir,
    ["relay", "serve", "--data-dir", data, "--grpc-port", String(grpcPort), "--http-port", String(httpPort)],
    relayReady,
    {
      env: {
        // MALLOC_ARENA_MAX passes through, to tell allocator fragmentation from a leak when profiling memory.
        ...(process.env["MALLOC_ARENA_MAX"] === undefined ? {} : { MALLOC_ARENA_MAX: process.env["MALLOC_ARENA_MAX"] }),
        ...(profile === undefined
          ? {}
          : {
              ABUSE_CPU_PROF: profile,
              NODE_OPTIONS: `--require ${path.join(import.meta.dirname, "cpuProfile.cjs")}`
            })
      }
    }
  )
  const match = relayReady.exec(relay.output())!
  const grpc = match[1]!
  const http = match[2]!.replace(/,$/, "")
  const workspace = (name: string) =>
    Effect.gen(function* () {
      const created = yield* Processes.run(dir, ["relay", "workspace", "create", name, "--json", "--data-dir", data])
      if (created.code !== 0) return yield* Effect.die(new Error(created.stderr))
      return JSON.parse(created.stdout).api_key as string
    })
  const attackerKey = yield* workspace("attacker")
  const victimKey = yield* workspace("victim")
  const env = { CMDOP_API_KEY: victimKey, CMDOP_SERVER: grpc }
  const agentHome = yield* TempHome.make("cmdop-abuse-agent-")
  const registered = yield* Processes.run(agentHome, ["agent", "register", "--hostname", "victim-box"], { env })
  if (registered.code !== 0) return yield* Effect.die(new Error(registered.stderr))
  const agent = yield* Processes.daemon(agentHome, ["agent", "start", "--foreground"], /connected to relay/, { env })
  const { probe, pid: proberPid } = yield* prober(grpc, victimKey)
  const isolated = isolate(relay.child.pid!, [agent.child.pid!, proberPid])
  const clientWith = (credential: string) =>
    RelayClientGrpc.make({ server: grpc, apiKey: Redacted.make(credential), timeout: "20 seconds" }).pipe(Effect.orDie)
  return {
    pid: relay.child.pid!,
    grpc,
    http,
    attackerKey,
    victimKey,
    attacker: yield* clientWith(attackerKey),
    victim: yield* clientWith(victimKey),
    clientWith,
    probe,
    cli: (key, args) =>
      Processes.run(dir, ["connect", ...args], { env: { CMDOP_API_KEY: key, CMDOP_SERVER: grpc } }).pipe(Effect.orDie),
    isolated
  } satisfies Stage
})
