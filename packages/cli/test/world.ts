/**
 * A real-process world for end-to-end tests: a `cmdop relay serve` process (SQLite in a temp dir), agent daemons
 * as `cmdop agent start --foreground` processes in their own HOMEs, and the CLI as a process per call.
 */
import { assert } from "@effect/vitest"
import { freePort } from "@cmdop/test-helpers/FreePort"
import * as Processes from "@cmdop/testkit/Processes"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Effect from "effect/Effect"
import * as path from "node:path"

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

export const world = Effect.gen(function* () {
  const dir = yield* TempHome.make("cmdop-e2e-relay-")
  const grpcPort = yield* freePort
  const httpPort = yield* freePort
  const relay = yield* relayUp(dir, grpcPort, httpPort)
  const server = `127.0.0.1:${grpcPort}`
  const create = (name: string) =>
    Effect.gen(function* () {
      const r = yield* Processes.run(dir, [
        "relay",
        "workspace",
        "create",
        name,
        "--json",
        "--data-dir",
        path.join(dir, "data")
      ])
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
      return { home, daemon }
    })
  const client = yield* TempHome.make("cmdop-e2e-client-")
  const cli = (key: string, args: ReadonlyArray<string>, stdin?: string) =>
    Processes.run(client, ["connect", ...args], {
      env: { CMDOP_API_KEY: key, CMDOP_SERVER: server },
      ...(stdin === undefined ? {} : { stdin })
    })
  return { dir, relay, server, grpcPort, httpPort, create, agent, cli, client }
})
