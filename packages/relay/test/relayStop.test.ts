/**
 * A busy relay stops cleanly on SIGTERM: a real `cmdop relay serve` process (SQLite store) holding a hundred agent
 * streams exits, its agents' streams are ended with UNAVAILABLE (they reconnect, elsewhere in
 * a cluster), and its machines are stored offline. Each connection's close used to write its last heartbeat and
 * the offline mark on its own, one connection after another: ~15 ms of the relay's CPU per agent, so 1,000 agents
 * held a node for 15 s and more (minutes on a loaded cluster node, past systemd's 90 s stop timeout).
 */
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import { AgentServiceService, Hello } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import { freePort } from "@cmdop/test-helpers/FreePort"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { spawn, spawnSync } from "node:child_process"
import { randomBytes, randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const bin = process.env["CMDOP_STOP_TEST_BIN"] ?? fileURLToPath(new URL("../../../bin/cmdop", import.meta.url))
const AGENTS = 100
const UNAVAILABLE = 14

const env = (home: string) => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CMDOP_"))),
  HOME: home
})

const cmdop = (home: string, args: ReadonlyArray<string>) => {
  const r = spawnSync(process.execPath, [bin, ...args], { env: env(home), encoding: "utf8", timeout: 60_000 })
  if (r.status !== 0) throw new Error(`cmdop ${args.join(" ")}: exit ${r.status}: ${r.stderr}`)
  return r.stdout
}

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

/** One agent over the real wire protocol, greeted; resolves with how its stream ends (its status code). */
const agent = (server: string, key: string, i: number) =>
  Effect.gen(function* () {
    const client = yield* GrpcClient.make(AgentServiceService, {
      address: server,
      channelOptions: { "grpc.use_local_subchannel_pool": 1 }
    })
    const channel = yield* client.bidiChannel("connect", { metadata: { authorization: `Bearer ${key}` } })
    yield* channel.send({
      kind: {
        $case: "hello",
        value: Hello.fromPartial({
          identity: {
            machineId: randomUUID(),
            machineSecret: randomBytes(32).toString("base64url"),
            hostname: `stop-${i}`,
            name: `stop-${i}`,
            os: "linux",
            agentVersion: "test"
          },
          window: 256 * 1024
        })
      }
    })
    const pull = yield* Stream.toPull(channel.responses)
    let first = yield* pull
    while (Chunk.isEmpty(first)) first = yield* pull
    assert.strictEqual(Chunk.unsafeHead(first).kind?.$case, "welcome")
    // The rest of the stream, drained in the background: its end is what the test waits for.
    return yield* Effect.forkScoped(Effect.exit(Effect.forever(pull)))
  })

describe("relay serve stops quickly with many agents", () => {
  it.scopedLive(
    `${AGENTS} agents: exit within 15 s, streams ended UNAVAILABLE, machines stored offline`,
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make("cmdop-stop-")
        const dataDir = path.join(home, "relay")
        const key = JSON.parse(cmdop(home, ["relay", "workspace", "create", "w", "--json", "--data-dir", dataDir]))
          .api_key as string
        const [grpcPort, httpPort] = [yield* freePort, yield* freePort]
        const relay = spawn(
          process.execPath,
          [
            bin,
            "relay",
            "serve",
            "--grpc-port",
            String(grpcPort),
            "--http-port",
            String(httpPort),
            "--data-dir",
            dataDir
          ],
          { env: env(home), stdio: ["ignore", "pipe", "pipe"] }
        )
        yield* Effect.addFinalizer(() => Effect.sync(() => relay.kill("SIGKILL")))
        let output = ""
        const exited = new Promise<number | null>((resolve) => relay.on("exit", (code) => resolve(code)))
        yield* Effect.async<void>((resume) => {
          const onData = (d: Buffer) => {
            output += d.toString()
            if (/relay serving/.test(output)) resume(Effect.void)
          }
          relay.stdout.on("data", onData)
          relay.stderr.on("data", onData)
          relay.once("exit", () => resume(Effect.die(new Error(`relay exited early:\n${output}`))))
        })
        const server = `127.0.0.1:${grpcPort}`
        const streams = yield* Effect.forEach(
          Array.from({ length: AGENTS }, (_, i) => i),
          (i) => agent(server, key, i),
          { concurrency: 16 }
        )
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
        assert.strictEqual(code, 0, output)
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
