/**
 * The two worlds the CLI's end-to-end tests run in, behind one interface, so one test file runs in both:
 *
 * - `memory`: the real command tree in this process on `Layers.memory` — an in-memory workspace store, an
 *   in-process relay on the in-memory relay store, agents attached in-process (the real session engine, their
 *   commands run by the in-memory process runner), a captured console. It opens no port, dials no socket and
 *   starts no child process at all: `memory` records its footprint and fails the test at its end otherwise.
 * - `live`: a `cmdop relay serve` process (SQLite in a temp dir) on loopback gRPC, agent daemons as
 *   `cmdop agent start --foreground` processes in their own HOMEs, and the CLI as a process per call.
 */
import { afterAll, assert } from "@effect/vitest"
import { identity, attach } from "@cmdop/testkit/InProcessAgent"
import * as Footprint from "@cmdop/test-helpers/Footprint"
import { freePort } from "@cmdop/test-helpers/FreePort"
import * as Processes from "@cmdop/testkit/Processes"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as path from "node:path"
import * as Layers from "../src/Layers.js"
import { type Result, runMain } from "./support.js"

export interface Agent {
  /** Stops the agent the way its process would on SIGTERM: the relay sees its stream end. */
  readonly stop: Effect.Effect<void>
}

export interface World {
  readonly name: "memory" | "live"
  /** The relay address a guest passes with `--server`. */
  readonly server: string
  /** The base URL of share links (`<base>/s/<token>`). */
  readonly shareBase: string
  /** `cmdop relay workspace create <name>` on the relay host; the workspace's first key. */
  readonly create: (name: string) => Effect.Effect<string>
  /** `cmdop relay <args…>` on the relay host, against the relay's store. */
  readonly admin: (args: ReadonlyArray<string>) => Effect.Effect<Result>
  /** An agent for `hostname` with `key`, connected (online) when this returns; stopped when the scope closes. */
  readonly agent: (key: string, hostname: string) => Effect.Effect<Agent, unknown, Scope.Scope>
  /** `cmdop connect <args…>` as a client with `CMDOP_API_KEY=key` and `CMDOP_SERVER`, `stdin` piped when given. */
  readonly cli: (key: string, args: ReadonlyArray<string>, stdin?: string) => Effect.Effect<Result>
  /** `cmdop <args…>` (any command, not only `connect`) as that client. */
  readonly cmdop: (key: string, args: ReadonlyArray<string>) => Effect.Effect<Result>
  /** `cmdop <args…>` with an empty HOME and no credential in the environment (a guest). */
  readonly bare: (args: ReadonlyArray<string>) => Effect.Effect<Result>
}

// --- the live world: real processes over loopback gRPC ---

export const relayUp = (dir: string, grpcPort: number, httpPort: number, extra: ReadonlyArray<string> = []) =>
  Processes.daemon(
    dir,
    [
      "relay",
      "serve",
      "--grpc-port",
      String(grpcPort),
      "--http-port",
      String(httpPort),
      "--data-dir",
      path.join(dir, "data"),
      ...extra
    ],
    /relay serving/
  )

/** A relay process of the live world: its directory (and SQLite store), ports and process. */
const liveRelay = Effect.gen(function* () {
  const dir = yield* TempHome.make("cmdop-e2e-relay-")
  const grpcPort = yield* freePort
  const httpPort = yield* freePort
  const relay = yield* relayUp(dir, grpcPort, httpPort)
  return { dir, grpcPort, httpPort, relay }
})

/** The live world on `relay`: its client and guest HOMEs, agents and CLI calls belong to the caller's scope. */
const liveOn = ({ dir, grpcPort, httpPort, relay }: Effect.Effect.Success<typeof liveRelay>) =>
  Effect.gen(function* () {
    const server = `127.0.0.1:${grpcPort}`
    const admin = (args: ReadonlyArray<string>) =>
      Processes.run(dir, ["relay", ...args, "--data-dir", path.join(dir, "data")])
    const create = (name: string) =>
      Effect.gen(function* () {
        const r = yield* admin(["workspace", "create", name, "--json"])
        assert.strictEqual(r.code, 0, r.stderr)
        return JSON.parse(r.stdout).api_key as string
      })
    const agent = (key: string, hostname: string) =>
      Effect.gen(function* () {
        const home = yield* TempHome.make("cmdop-e2e-agent-")
        const reg = yield* Processes.run(home, ["agent", "register", "--hostname", hostname, "-k", key, "-s", server])
        assert.strictEqual(reg.code, 0, reg.stderr)
        const daemon = yield* Processes.daemon(
          home,
          ["agent", "start", "--foreground", "-k", key, "-s", server],
          /connected to relay/
        )
        return { home, daemon, stop: daemon.stop("SIGTERM") }
      })
    const client = yield* TempHome.make("cmdop-e2e-client-")
    const cli = (key: string, args: ReadonlyArray<string>, stdin?: string) =>
      Processes.run(client, ["connect", ...args], {
        env: { CMDOP_API_KEY: key, CMDOP_SERVER: server },
        ...(stdin === undefined ? {} : { stdin })
      })
    const cmdop = (key: string, args: ReadonlyArray<string>) =>
      Processes.run(client, args, { env: { CMDOP_API_KEY: key, CMDOP_SERVER: server } })
    const guestHome = yield* TempHome.make("cmdop-e2e-guest-")
    const bare = (args: ReadonlyArray<string>) => Processes.run(guestHome, args)
    return {
      name: "live" as const,
      server,
      shareBase: `http://127.0.0.1:${httpPort}`,
      create,
      admin,
      agent,
      cli,
      cmdop,
      bare,
      dir,
      relay,
      grpcPort,
      httpPort,
      client
    }
  })

/** The live world, with what only it has: the relay's process, directory and ports. */
export const live = Effect.flatMap(liveRelay, liveOn)

/**
 * The live world for the tests of one file that leave its relay running (no stop, no restart): one relay process,
 * started at the first use and stopped after the file's last test, instead of one per test. Everything else is
 * still each test's own (client and guest HOMEs, agents and their HOMEs), and each test makes workspaces under
 * names of its own, so no test sees what another left and their order does not matter. Call once per file, at its
 * top level.
 */
export const sharedLive = () => {
  const scope = Effect.runSync(Scope.make())
  let started: Promise<Effect.Effect.Success<typeof liveRelay>> | undefined
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return Effect.flatMap(
    Effect.promise(() => (started ??= Effect.runPromise(Scope.extend(liveRelay, scope)))),
    liveOn
  )
}

// --- the memory world: the command tree in this process, an in-process relay and agents ---

const MEMORY_SERVER = "in-process"
const MEMORY_SHARE_BASE = "http://in-process"

/**
 * The memory world. Fails the test at its end if anything in it opened a port, dialed a socket or started a child
 * process (the agents' remote commands — sh, printf, sleep… — run on the in-memory process runner).
 */
export const memory = Effect.gen(function* () {
  const footprint = yield* Footprint.record
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => assert.deepStrictEqual(Footprint.violations(footprint), [], "the memory world left the process"))
  )
  const home = yield* TempHome.make("cmdop-memory-")
  const context = yield* Layer.build(
    Layers.memory({ home, relay: { server: MEMORY_SERVER, publicUrl: MEMORY_SHARE_BASE } })
  )
  const services = Layer.succeedContext(context)
  const run = (args: ReadonlyArray<string>, env: Record<string, string>, stdin?: string) =>
    runMain(args, { env, stdin, services })
  const admin = (args: ReadonlyArray<string>) => run(["relay", ...args], {})
  const create = (name: string) =>
    Effect.gen(function* () {
      const r = yield* admin(["workspace", "create", name, "--json"])
      assert.strictEqual(r.code, 0, r.stderr)
      return JSON.parse(r.stdout).api_key as string
    })
  const agent = (key: string, hostname: string) =>
    attach(key, identity({ hostname }), { hostname }).pipe(
      Effect.provide(context),
      Effect.map((a) => ({ stop: a.stop }))
    )
  const cli = (key: string, args: ReadonlyArray<string>, stdin?: string) =>
    run(["connect", ...args], { CMDOP_API_KEY: key, CMDOP_SERVER: MEMORY_SERVER }, stdin)
  const bare = (args: ReadonlyArray<string>) => run(args, {})
  const cmdop = (key: string, args: ReadonlyArray<string>) =>
    run(args, { CMDOP_API_KEY: key, CMDOP_SERVER: MEMORY_SERVER })
  return {
    name: "memory" as const,
    server: MEMORY_SERVER,
    shareBase: MEMORY_SHARE_BASE,
    create,
    admin,
    agent,
    cli,
    cmdop,
    bare,
    footprint
  }
})

/** Both worlds, for `describe.each`-style loops: the in-memory run first (it is the fast one). */
export const worlds: ReadonlyArray<readonly [string, Effect.Effect<World, unknown, Scope.Scope>]> = [
  ["in memory", memory],
  ["live processes over loopback gRPC", live]
]

/**
 * `worlds` with the live world's relay shared by the file's tests (`sharedLive`): for files whose tests never stop
 * the relay and name their workspaces apart. Call once per file, at its top level.
 */
export const worldsSharingRelay = (
  shared: Effect.Effect<World, unknown, Scope.Scope> = sharedLive()
): ReadonlyArray<readonly [string, Effect.Effect<World, unknown, Scope.Scope>]> => [
  ["in memory", memory],
  ["live processes over loopback gRPC", shared]
]
