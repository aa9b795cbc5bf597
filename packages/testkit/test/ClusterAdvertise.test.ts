/**
 * `relay serve --advertise-address`: the address a node tells agents to reach it at. Two real `cmdop relay serve`
 * processes on one fresh PostgreSQL database; node B advertises the address of a TCP forwarder in front of its gRPC
 * port (as a NAT or a public name would be), which nothing else knows. An agent started with node A's address only
 * learns B's advertised address from A's `Welcome`; after `kill -9` of A it comes back through that address, so
 * through the forwarder, on B. A bad value (here from the environment variable) is one usage error, exit 2.
 */
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import { eventually } from "@cmdop/test-helpers/Eventually"
import { freePort } from "@cmdop/test-helpers/FreePort"
import { freshPgDatabase } from "@cmdop/test-helpers/Postgres"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Processes from "@cmdop/testkit/Processes"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import * as net from "node:net"

/** A TCP forwarder to `target` on a port of its own, counting the connections it carried; closed with the scope. */
const forwarder = (target: number) =>
  Effect.acquireRelease(
    Effect.async<{ readonly port: number; readonly connections: () => number; readonly server: net.Server }>(
      (resume) => {
        let connections = 0
        const server = net.createServer((inbound) => {
          connections += 1
          const outbound = net.connect(target, "127.0.0.1")
          inbound.pipe(outbound).pipe(inbound)
          inbound.on("error", () => outbound.destroy())
          outbound.on("error", () => inbound.destroy())
        })
        server.listen(0, "127.0.0.1", () =>
          resume(
            Effect.succeed({ port: (server.address() as net.AddressInfo).port, connections: () => connections, server })
          )
        )
      }
    ),
    ({ server }) => Effect.sync(() => server.close())
  )

describe("relay serve --advertise-address", () => {
  it.scopedLive(
    "an agent told a node's advertised address by another node reaches it there when its own node dies",
    () =>
      Effect.gen(function* () {
        const db = yield* freshPgDatabase("cmdop_cluster_advertise")
        const secret = randomBytes(32).toString("hex")
        const node = (name: string, extra: ReadonlyArray<string>) =>
          Effect.gen(function* () {
            const at = yield* Effect.all({ grpc: freePort, http: freePort, peer: freePort })
            const dir = yield* TempHome.make(`cmdop-advertise-${name}-`)
            const args = [
              "relay",
              "serve",
              "--db",
              db,
              "--node-id",
              name,
              "--grpc-port",
              String(at.grpc),
              "--http-port",
              String(at.http),
              "--peer-port",
              String(at.peer),
              "--peer-address",
              `127.0.0.1:${at.peer}`,
              ...extra
            ]
            return { at, dir, args }
          })
        const serve = (n: { readonly dir: string; readonly args: ReadonlyArray<string> }) =>
          Processes.daemon(n.dir, n.args, /relay serving/, {
            env: { CMDOP_CLUSTER_SECRET: secret },
            timeoutMs: 60_000
          })

        // A bad value from the environment variable: one usage error naming the flag, before anything starts.
        const bad = yield* node("bad", [])
        const refused = yield* Processes.run(bad.dir, bad.args, {
          env: { CMDOP_CLUSTER_SECRET: secret, CMDOP_RELAY_ADVERTISE_ADDRESS: "relay-b.example.com" }
        })
        assert.strictEqual(refused.code, 2, refused.stderr)
        assert.include(
          refused.stderr,
          'invalid --advertise-address (or CMDOP_RELAY_ADVERTISE_ADDRESS) "relay-b.example.com"'
        )
        assert.include(refused.stderr, "host:port")

        // Node B, advertised behind the forwarder, starts first: node A's first lease renewal already lists it.
        const b = yield* node("node-b", [])
        const front = yield* forwarder(b.at.grpc)
        const advertised = `127.0.0.1:${front.port}`
        const nodeB = yield* serve({ dir: b.dir, args: [...b.args, "--advertise-address", advertised] })
        assert.include(nodeB.output(), `agents at ${advertised}`)
        const a = yield* node("node-a", [])
        const nodeA = yield* serve(a)

        const admin = yield* TempHome.make("cmdop-advertise-admin-")
        const created = yield* Processes.run(admin, ["relay", "workspace", "create", "acme", "--json", "--db", db])
        assert.strictEqual(created.code, 0, created.stderr)
        const key = JSON.parse(created.stdout).api_key as string
        const home = yield* TempHome.make("cmdop-advertise-agent-")
        const env = { CMDOP_API_KEY: key, CMDOP_SERVER: `127.0.0.1:${a.at.grpc}` }
        const registered = yield* Processes.run(home, ["agent", "register", "--hostname", "roamer"], { env })
        assert.strictEqual(registered.code, 0, registered.stderr)
        yield* Processes.daemon(
          home,
          ["agent", "start", "--foreground", "--server", `127.0.0.1:${a.at.grpc}`],
          /connected to relay/,
          { env }
        )
        // Nothing has used the advertised address yet: the agent is on node A, the only address it was given.
        assert.strictEqual(front.connections(), 0)

        nodeA.child.kill("SIGKILL")
        const onB = yield* RelayClientGrpc.make({ server: `127.0.0.1:${b.at.grpc}`, apiKey: Redacted.make(key) })
        const out = yield* eventually(
          "roamer back online through node B's advertised address",
          Effect.map(
            Effect.either(Stream.runCollect(onB.exec({ machine: "roamer", argv: ["echo", "via-advertised"] }))),
            (r) =>
              r._tag === "Right"
                ? Buffer.concat(
                    Chunk.toReadonlyArray(r.right).flatMap((e) => (e._tag === "Stdout" ? [e.data] : []))
                  ).toString()
                : undefined
          ),
          { timeout: "45 seconds", interval: "200 millis" }
        )
        assert.strictEqual(out, "via-advertised\n")
        // The agent never knew B's own gRPC port: it came through the forwarder, the address B advertised.
        assert.isAtLeast(front.connections(), 1)
      }),
    180_000
  )
})
