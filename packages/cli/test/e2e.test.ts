/**
 * End to end: a relay, agents and the CLI. The first suite runs in both worlds (`World.ts`): in memory (the
 * command tree in this process on an in-process relay, no sockets, no cmdop processes) and with real processes
 * over loopback gRPC. What only real processes have (a relay killed and restarted, a background daemon, TLS,
 * PostgreSQL) runs in the live world only.
 */
import { assert, describe, it } from "@effect/vitest"
import { freePort } from "@cmdop/test-helpers/FreePort"
import { freshPgSchema } from "@cmdop/test-helpers/Postgres"
import * as Processes from "@cmdop/testkit/Processes"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import { eventually } from "@cmdop/test-helpers/Eventually"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as net from "node:net"
import * as path from "node:path"
import { live, relayUp, sharedLive, worldsSharingRelay } from "./World.js"

// One relay for the tests that leave it running (each names its workspaces apart); the relay-restart test has its own.
const shared = sharedLive()

for (const [worldName, makeWorld] of worldsSharingRelay(shared))
  describe(`end to end: relay + two agents + CLI, ${worldName}`, () => {
    it.scopedLive(
      "list, exec, stdin, exit codes, timeout, unknown / ambiguous / offline machines, isolation",
      () =>
        Effect.gen(function* () {
          const w = yield* makeWorld
          const key = yield* w.create("acme")
          const otherKey = yield* w.create("globex")
          const alpha = yield* w.agent(key, "web-alpha")
          yield* w.agent(key, "web-beta")
          yield* w.agent(otherKey, "globex-1")

          const list = yield* w.cli(key, ["--list", "--json"])
          assert.strictEqual(list.code, 0, list.stderr)
          const machines = JSON.parse(list.stdout).machines as Array<{ hostname: string; online: boolean }>
          assert.deepStrictEqual(machines.map((m) => [m.hostname, m.online]).sort(), [
            ["web-alpha", true],
            ["web-beta", true]
          ])

          const table = yield* w.cli(key, ["--list"])
          assert.match(table.stdout, /web-alpha\s+web-alpha\s+[0-9a-f-]{36}\s+online\s+\d+s ago/)

          const out = yield* w.cli(key, ["exec", "web-alpha", "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 7"])
          assert.strictEqual(out.stdout, "to-out\n")
          assert.strictEqual(out.stderr, "to-err\n")
          assert.strictEqual(out.code, 7)

          const json = yield* w.cli(key, ["exec", "web-beta", "--json", "--", "printf", "a b"])
          const parsed = JSON.parse(json.stdout)
          assert.deepStrictEqual(Object.keys(parsed).sort(), [
            "command",
            "duration_ms",
            "exit_code",
            "hostname",
            "machine_id",
            "stderr",
            "stdout",
            "timed_out"
          ])
          assert.strictEqual(parsed.stdout, "a b")
          assert.strictEqual(parsed.hostname, "web-beta")
          assert.deepStrictEqual(parsed.command, ["printf", "a b"])

          const piped = yield* w.cli(key, ["exec", "web-al", "--", "wc", "-c"], "x".repeat(100_000))
          assert.strictEqual(piped.stdout.trim(), "100000")

          // exec never runs on a machine picked by a loose substring: a prefix or the exact name, or an error.
          const loose = yield* w.cli(key, ["exec", "alpha", "--", "true"])
          assert.strictEqual(loose.code, 255)
          assert.include(loose.stderr, 'machine "alpha" matches web-alpha only by a substring')
          assert.include(loose.stderr, "cmdop connect exec web-alpha -- …")

          const signalled = yield* w.cli(key, ["exec", "web-alpha", "--", "sh", "-c", "kill -TERM $$"])
          assert.strictEqual(signalled.code, 143)

          const timedOut = yield* w.cli(key, ["exec", "web-alpha", "--timeout", "1s", "--", "sleep", "30"])
          assert.strictEqual(timedOut.code, 124)
          assert.include(timedOut.stderr, "timed out after 1s")

          const unknown = yield* w.cli(key, ["exec", "nope", "--", "true"])
          assert.strictEqual(unknown.code, 255)
          assert.include(unknown.stderr, 'machine "nope" not found')
          // A near miss is suggested (across the wire too: the candidates travel with the error).
          const typo = yield* w.cli(key, ["exec", "web-alpah", "--", "true"])
          assert.strictEqual(typo.code, 255)
          assert.include(typo.stderr, 'machine "web-alpah" not found in this workspace (did you mean web-alpha?)')

          const ambiguous = yield* w.cli(key, ["exec", "web", "--", "true"])
          assert.strictEqual(ambiguous.code, 255)
          assert.match(
            ambiguous.stderr,
            /machine "web" is ambiguous: web-(alpha|beta) \([0-9a-f-]{36}, online\), web-(alpha|beta)/
          )

          // Another workspace neither sees nor reaches them, and vice versa.
          const otherList = yield* w.cli(otherKey, ["--list", "--json"])
          assert.deepStrictEqual(
            JSON.parse(otherList.stdout).machines.map((m: { hostname: string }) => m.hostname),
            ["globex-1"]
          )
          const crossed = yield* w.cli(otherKey, ["exec", "web-alpha", "--", "true"])
          assert.strictEqual(crossed.code, 255)
          assert.include(crossed.stderr, "not found")

          // The agent stops: offline at once, with its heartbeat age.
          yield* alpha.stop
          const offline = yield* w.cli(key, ["exec", "web-alpha", "--", "true"])
          assert.strictEqual(offline.code, 255)
          assert.match(offline.stderr, /machine "web-alpha" is offline \(last heartbeat \d+s ago\)/)
          const online = yield* w.cli(key, ["--list", "--online", "--json"])
          assert.deepStrictEqual(
            JSON.parse(online.stdout).machines.map((m: { hostname: string }) => m.hostname),
            ["web-beta"]
          )

          // whoami shows what the relay says.
          const who = JSON.parse((yield* w.cli(key, ["whoami", "--json"])).stdout)
          assert.deepStrictEqual(who.relay, { workspace: "acme", principal_kind: "key", principal: key.slice(0, 12) })
          assert.strictEqual(who.source, "env")
          // A key the relay refuses fails the check (exit 255), after printing what was checked.
          const refused = yield* w.cli("ck_live_ZZZZzzzz9999yyyy8888xxxx7777wwww", ["whoami", "--json"])
          assert.strictEqual(refused.code, 255, refused.stderr)
          assert.strictEqual(JSON.parse(refused.stdout).relay, null)
          assert.match(refused.stderr, /^cmdop: the relay at \S+ refuses this key \(.+\); set a valid one with /)
        }),
      120_000
    )

    it.scopedLive(
      "rotating a workspace key locks the old key out at once",
      () =>
        Effect.gen(function* () {
          const w = yield* makeWorld
          const key = yield* w.create("acme-rotate")
          assert.strictEqual((yield* w.cli(key, ["--list"])).code, 0)
          const rotated = yield* w.admin(["key", "rotate", "acme-rotate", "--json"])
          const newKey = JSON.parse(rotated.stdout).api_key as string
          const old = yield* w.cli(key, ["--list"])
          assert.strictEqual(old.code, 255)
          assert.include(old.stderr, "does not accept key")
          assert.notInclude(old.stderr, key)
          assert.strictEqual((yield* w.cli(newKey, ["--list"])).code, 0)
        }),
      60_000
    )
  })

describe("end to end with real processes only", () => {
  it.scopedLive(
    "the relay is killed and restarted: every agent comes back and exec works again",
    () =>
      Effect.gen(function* () {
        const w = yield* live
        const key = yield* w.create("acme")
        yield* w.agent(key, "host-1")
        yield* w.agent(key, "host-2")
        assert.strictEqual((yield* w.cli(key, ["exec", "host-1", "--", "true"])).code, 0)

        // A command running when the relay dies: its CLI says the relay went away, not that it was never reachable.
        const running = yield* Effect.fork(w.cli(key, ["exec", "host-1", "--", "sleep", "30"]))
        yield* Effect.sleep("1500 millis")
        yield* w.relay.stop("SIGKILL")
        const cut = yield* Fiber.join(running)
        assert.strictEqual(cut.code, 255, cut.stderr)
        assert.match(cut.stderr, /relay \S+ went away during the call \(the connection dropped\); a command it ran/)
        assert.notInclude(cut.stderr, "running there?")
        const down = yield* w.cli(key, ["--list"])
        assert.strictEqual(down.code, 255)
        assert.include(down.stderr, "unreachable")

        yield* relayUp(w.dir, w.grpcPort, w.httpPort)
        let online: Array<string> = []
        yield* eventually(
          "both agents back online",
          Effect.map(w.cli(key, ["--list", "--online", "--json"]), (r) => {
            if (r.code === 0)
              online = JSON.parse(r.stdout)
                .machines.map((m: { hostname: string }) => m.hostname)
                .sort()
            return online.length === 2 ? true : undefined
          }),
          { timeout: "40 seconds", interval: "250 millis" }
        ).pipe(Effect.ignore)
        assert.deepStrictEqual(online, ["host-1", "host-2"])
        const again = yield* w.cli(key, ["exec", "host-2", "--", "echo", "back"])
        assert.strictEqual(again.stdout, "back\n")
      }),
    120_000
  )

  it.scopedLive(
    "agent start in the background, status, stop: the relay shows the machine offline at once",
    () =>
      Effect.gen(function* () {
        const w = yield* shared
        const key = yield* w.create("acme-background")
        const home = yield* TempHome.make("cmdop-e2e-bg-")
        const env = { CMDOP_API_KEY: key, CMDOP_SERVER: w.server }
        assert.strictEqual((yield* Processes.run(home, ["agent", "register", "--hostname", "bg-1"], { env })).code, 0)
        const started = yield* Processes.run(home, ["agent", "start"], { env })
        assert.strictEqual(started.code, 0, started.stderr)
        assert.match(started.stdout, /agent started \(pid \d+\)/)
        let status = ""
        yield* eventually(
          "the agent ONLINE",
          Effect.map(Processes.run(home, ["agent", "status"]), (r) => {
            status = r.stdout
            return status.includes("ONLINE") ? true : undefined
          }),
          { timeout: "40 seconds", interval: "100 millis" }
        ).pipe(Effect.ignore)
        assert.include(status, "ONLINE")
        const again = yield* Processes.run(home, ["agent", "start"], { env })
        assert.strictEqual(again.code, 255)
        assert.include(again.stderr, "already running")
        assert.strictEqual((yield* w.cli(key, ["exec", "bg-1", "--", "true"])).code, 0)

        const stopped = yield* Processes.run(home, ["agent", "stop"])
        assert.strictEqual(stopped.code, 0, stopped.stderr)
        const list = JSON.parse((yield* w.cli(key, ["--list", "--json"])).stdout)
        assert.strictEqual(list.machines[0].online, false)
        assert.include((yield* Processes.run(home, ["agent", "status"])).stdout, "STOPPED")
      }),
    60_000
  )

  it.scopedLive(
    'agent start against a relay that takes a moment to answer: it waits for ONLINE, no "not online yet"',
    () =>
      Effect.gen(function* () {
        const w = yield* shared
        const key = yield* w.create("acme-slow-dial")
        // A TCP proxy that holds each connection 600 ms before passing it on: the daemon reports CONNECTING first
        // for that long, as on a relay across the world (the start said "connecting … not online yet" then).
        const [relayHost, relayPort] = w.server.split(":") as [string, string]
        const proxy = yield* Effect.acquireRelease(
          Effect.async<net.Server>((resume) => {
            const server = net.createServer((client) => {
              client.on("error", () => client.destroy())
              setTimeout(() => {
                const upstream = net.connect(Number(relayPort), relayHost)
                upstream.on("error", () => client.destroy())
                client.on("close", () => upstream.destroy())
                upstream.on("close", () => client.destroy())
                client.pipe(upstream).pipe(client)
              }, 600)
            })
            server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
          }),
          (server) => Effect.sync(() => server.close())
        )
        const server = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`
        const home = yield* TempHome.make("cmdop-e2e-slow-")
        const env = { CMDOP_API_KEY: key, CMDOP_SERVER: server }
        assert.strictEqual((yield* Processes.run(home, ["agent", "register", "--hostname", "slow-1"], { env })).code, 0)
        const started = yield* Processes.run(home, ["agent", "start"], { env })
        yield* Effect.addFinalizer(() => Effect.ignore(Processes.run(home, ["agent", "stop"])))
        assert.strictEqual(started.code, 0, started.stderr)
        assert.match(started.stdout, /^agent started \(pid \d+\), online to /)
        assert.notInclude(started.stderr, "not online yet")
      }),
    60_000
  )
})

describe("end to end over TLS", () => {
  it.scopedLive(
    "relay with --tls-cert/--tls-key; agent and CLI verify it with CMDOP_TLS_CA, and refuse it without",
    () =>
      Effect.gen(function* () {
        const fixtures = new URL("../../testkit/fixtures/", import.meta.url).pathname
        const cert = path.join(fixtures, "localhost.crt")
        const dir = yield* TempHome.make("cmdop-e2e-tls-")
        const grpcPort = yield* freePort
        const httpPort = yield* freePort
        const data = path.join(dir, "data")
        yield* relayUp(dir, grpcPort, httpPort, ["--tls-cert", cert, "--tls-key", path.join(fixtures, "localhost.key")])
        const created = yield* Processes.run(dir, [
          "relay",
          "workspace",
          "create",
          "secure",
          "--json",
          "--data-dir",
          data
        ])
        const key = JSON.parse(created.stdout).api_key as string
        const server = `https://127.0.0.1:${grpcPort}`
        const env = { CMDOP_API_KEY: key, CMDOP_SERVER: server, CMDOP_TLS_CA: cert }
        const home = yield* TempHome.make("cmdop-e2e-tls-agent-")
        assert.strictEqual((yield* Processes.run(home, ["agent", "register", "--hostname", "tls-1"], { env })).code, 0)
        yield* Processes.daemon(home, ["agent", "start", "--foreground"], /connected to relay/, { env })
        const client = yield* TempHome.make("cmdop-e2e-tls-client-")
        const ok = yield* Processes.run(client, ["connect", "exec", "tls-1", "--", "echo", "over tls"], { env })
        assert.strictEqual(ok.stdout, "over tls\n", ok.stderr)
        const untrusted = yield* Processes.run(client, ["connect", "--list"], {
          env: { CMDOP_API_KEY: key, CMDOP_SERVER: server }
        })
        assert.strictEqual(untrusted.code, 255)
        // Not "unreachable": one line that names what to set.
        assert.strictEqual(untrusted.stderr.trim().split("\n").length, 1, untrusted.stderr)
        assert.include(untrusted.stderr, "with a certificate this machine does not trust")
        assert.include(untrusted.stderr, "set CMDOP_TLS_CA")
        const plaintext = yield* Processes.run(client, ["connect", "--list"], {
          env: { CMDOP_API_KEY: key, CMDOP_SERVER: `127.0.0.1:${grpcPort}` }
        })
        assert.strictEqual(plaintext.code, 255)
        // Plaintext against a TLS port: one line that says to write https://.
        assert.strictEqual(plaintext.stderr.trim().split("\n").length, 1, plaintext.stderr)
        assert.include(plaintext.stderr, `use --server https://127.0.0.1:${grpcPort}`)
      }),
    60_000
  )
})

describe("end to end on PostgreSQL", () => {
  it.scopedLive(
    "relay serve --db postgres://…: workspaces, agents and exec work on the scale-out store",
    () =>
      Effect.gen(function* () {
        // A schema of our own, dropped afterwards, so parallel runs never meet.
        const { url: db } = yield* freshPgSchema("cmdop_e2e")
        const dir = yield* TempHome.make("cmdop-e2e-pg-")
        const grpcPort = yield* freePort
        const httpPort = yield* freePort
        yield* Processes.daemon(
          dir,
          ["relay", "serve", "--db", db, "--grpc-port", String(grpcPort), "--http-port", String(httpPort)],
          /relay serving: .* store postgresql/
        )
        const created = yield* Processes.run(dir, ["relay", "workspace", "create", "pg", "--json", "--db", db])
        assert.strictEqual(created.code, 0, created.stderr)
        const key = JSON.parse(created.stdout).api_key as string
        const env = { CMDOP_API_KEY: key, CMDOP_SERVER: `127.0.0.1:${grpcPort}` }
        const home = yield* TempHome.make("cmdop-e2e-pg-agent-")
        assert.strictEqual((yield* Processes.run(home, ["agent", "register", "--hostname", "pg-box"], { env })).code, 0)
        yield* Processes.daemon(home, ["agent", "start", "--foreground"], /connected to relay/, { env })
        const client = yield* TempHome.make("cmdop-e2e-pg-client-")
        const out = yield* Processes.run(client, ["connect", "exec", "pg-box", "--", "echo", "via postgres"], { env })
        assert.strictEqual(out.stdout, "via postgres\n", out.stderr)
        const list = JSON.parse((yield* Processes.run(client, ["connect", "--list", "--json"], { env })).stdout)
        assert.deepStrictEqual(
          list.machines.map((m: { hostname: string; online: boolean }) => [m.hostname, m.online]),
          [["pg-box", true]]
        )
      }),
    60_000
  )
})
