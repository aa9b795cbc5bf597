/**
 * A busy relay stops cleanly on SIGTERM: a real `cmdop relay serve` process (SQLite store) holding a hundred agent
 * streams exits, its agents' streams are ended with UNAVAILABLE (they reconnect, elsewhere in
 * a cluster), and its machines are stored offline. Each connection's close used to write its last heartbeat and
 * the offline mark on its own, one connection after another: ~15 ms of the relay's CPU per agent, so 1,000 agents
 * held a node for 15 s and more (minutes on a loaded cluster node, past systemd's 90 s stop timeout).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import { agents, cmdop, serve } from "./servedRelay.js"

const AGENTS = 100
const UNAVAILABLE = 14

/** CPU time (user + system) the process used so far, in ms; undefined once it is gone. */
const cpuMs = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return undefined
  }
}

describe("relay serve stops quickly with many agents", () => {
  it.scopedLive(
    `${AGENTS} agents: exit within 15 s, streams ended UNAVAILABLE, machines stored offline`,
    () =>
      Effect.gen(function* () {
        const served = yield* serve()
        const { home, dataDir, key, server, process: relay } = served
        const exited = new Promise<number | null>((resolve) => relay.on("exit", (code) => resolve(code)))
        const streams = yield* agents(server, key, AGENTS)
        const listed = JSON.parse(cmdop(home, ["relay", "workspace", "list", "--json", "--data-dir", dataDir]))
        assert.strictEqual(listed.workspaces[0].online, AGENTS)

        const cpuBefore = cpuMs(relay.pid!)!
        let cpuLast = cpuBefore
        const poll = setInterval(() => (cpuLast = cpuMs(relay.pid!) ?? cpuLast), 20)
        const t0 = performance.now()
        relay.kill("SIGTERM")
        const code = yield* Effect.promise(() =>
          Promise.race([exited, new Promise<"late">((resolve) => setTimeout(() => resolve("late"), 60_000))])
        )
        const stopMs = performance.now() - t0
        clearInterval(poll)
        const cpuPerAgent = (cpuLast - cpuBefore) / AGENTS
        process.stderr.write(
          `relay stop with ${AGENTS} agents: ${Math.round(stopMs)} ms, ${cpuPerAgent.toFixed(1)} ms CPU per agent\n`
        )
        assert.strictEqual(code, 0, served.output())
        // Only a relay that hangs fails this: how fast it stops is a figure of the bench (bench/README.md, "Stopping
        // a relay with many agents"), not of a test on a shared machine.
        assert.isBelow(stopMs, 30_000)

        // Every agent learnt that the relay went away (an error status, UNAVAILABLE: it reconnects), none saw a
        // clean end of its stream.
        const ends = yield* Effect.forEach(streams, (f) => f.await)
        for (const end of ends) {
          const inner = Exit.isSuccess(end) ? end.value : undefined
          const status =
            inner !== undefined && Exit.isFailure(inner)
              ? Option.getOrUndefined(Option.flatten(Cause.failureOption(inner.cause)))
              : undefined
          assert.strictEqual((status as { code?: number } | undefined)?.code, UNAVAILABLE)
        }
        // The store says what is true: nothing online once the relay is gone.
        const after = JSON.parse(cmdop(home, ["relay", "workspace", "list", "--json", "--data-dir", dataDir]))
        assert.strictEqual(after.workspaces[0].machines, AGENTS)
        assert.strictEqual(after.workspaces[0].online, 0)
      }),
    120_000
  )
})
