/**
 * A real `cmdop relay serve` process (SQLite store, its own temp HOME) and agents speaking the real wire protocol
 * to it from the test process: for tests of what the relay process itself does with many agents (how it stops,
 * what each connection costs it).
 */
import * as GrpcClient from "@cmdop/grpc/GrpcClient"
import { AgentServiceService, Hello } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import { freePort } from "@cmdop/test-helpers/FreePort"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import { assert } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { type ChildProcessByStdio, spawn, spawnSync } from "node:child_process"
import { randomBytes, randomUUID } from "node:crypto"
import * as path from "node:path"
import type { Readable } from "node:stream"
import { fileURLToPath } from "node:url"

export const bin = process.env["CMDOP_STOP_TEST_BIN"] ?? fileURLToPath(new URL("../../../bin/cmdop", import.meta.url))

export const env = (home: string) => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CMDOP_"))),
  HOME: home
})

/** Runs `cmdop args` to the end; its stdout, or a failure with its stderr. */
export const cmdop = (home: string, args: ReadonlyArray<string>) => {
  const r = spawnSync(process.execPath, [bin, ...args], { env: env(home), encoding: "utf8", timeout: 60_000 })
  if (r.status !== 0) throw new Error(`cmdop ${args.join(" ")}: exit ${r.status}: ${r.stderr}`)
  return r.stdout
}

export interface ServedRelay {
  readonly home: string
  readonly dataDir: string
  /** The workspace's API key. */
  readonly key: string
  readonly server: string
  readonly process: ChildProcessByStdio<null, Readable, Readable>
  /** What the relay wrote so far, stdout and stderr together. */
  readonly output: () => string
}

/**
 * A workspace, then `relay serve` on it (started with `nodeArgs` before the CLI), once it says it serves; killed
 * when the scope ends.
 */
export const serve = (nodeArgs: ReadonlyArray<string> = []) =>
  Effect.gen(function* () {
    const home = yield* TempHome.make("cmdop-served-")
    const dataDir = path.join(home, "relay")
    const key = JSON.parse(cmdop(home, ["relay", "workspace", "create", "w", "--json", "--data-dir", dataDir]))
      .api_key as string
    const [grpcPort, httpPort] = [yield* freePort, yield* freePort]
    const relay = spawn(
      process.execPath,
      [
        ...nodeArgs,
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
    relay.stdout.on("data", (d: Buffer) => (output += d.toString()))
    relay.stderr.on("data", (d: Buffer) => (output += d.toString()))
    yield* Effect.async<void>((resume) => {
      const check = () => {
        if (/relay serving/.test(output)) resume(Effect.void)
      }
      relay.stdout.on("data", check)
      relay.stderr.on("data", check)
      relay.once("exit", () => resume(Effect.die(new Error(`relay exited early:\n${output}`))))
    })
    return {
      home,
      dataDir,
      key,
      server: `127.0.0.1:${grpcPort}`,
      process: relay,
      output: () => output
    } satisfies ServedRelay
  })

/**
 * One agent over the real wire protocol (its own connection), greeted; answers the fiber draining the rest of its
 * stream, whose exit is how the stream ended.
 */
export const agent = (server: string, key: string, i: number) =>
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
            hostname: `agent-${i}`,
            name: `agent-${i}`,
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
    // The rest of the stream, drained in the background: its end is what a test may wait for.
    return yield* Effect.forkScoped(Effect.exit(Effect.forever(pull)))
  })

/** `count` agents numbered from `from`, 16 connecting at a time. */
export const agents = (server: string, key: string, count: number, from = 0) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => from + i),
    (i) => agent(server, key, i),
    { concurrency: 16 }
  )
