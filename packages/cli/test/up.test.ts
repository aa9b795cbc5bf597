/**
 * `cmdop up` and `cmdop agent stop` on the same machine, as real processes: the stop says that it stops the
 * whole `up` (relay included), and `up` says what it stopped when it ends. Its relay has accounts, so the README's
 * sign-in and `cmdop login` work on it, on whatever ports `up` was given: `up` records the relay's web address
 * with its gRPC address, and `login` goes there.
 */
import { assert, describe, it } from "@effect/vitest"
import { eventuallySync } from "@cmdop/test-helpers/Eventually"
import { freePort } from "@cmdop/test-helpers/FreePort"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Processes from "@cmdop/testkit/Processes"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"

describe("cmdop up", () => {
  it.scopedLive(
    "agent stop on a machine running up says what will stop; up prints what it stopped",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make("cmdop-up-")
        const grpc = yield* freePort
        const http = yield* freePort
        const up = yield* Processes.daemon(
          home,
          ["up", "--grpc-port", String(grpc), "--http-port", String(http), "--data-dir", path.join(home, "relay")],
          /cmdop is up/,
          { timeoutMs: 40_000 }
        )
        // Sign-in works on the relay up runs: the OAuth metadata `cmdop login` discovers, and the sign-in page.
        const metadata = yield* Effect.promise(() =>
          fetch(`http://127.0.0.1:${http}/.well-known/oauth-authorization-server`)
        )
        assert.strictEqual(metadata.status, 200)
        assert.include(
          ((yield* Effect.promise(() => metadata.json())) as { device_authorization_endpoint: string })
            .device_authorization_endpoint,
          "/device"
        )
        const signin = yield* Effect.promise(() => fetch(`http://127.0.0.1:${http}/signin`))
        assert.strictEqual(signin.status, 200)
        // The agent connects in the background; its status file names the up process.
        yield* eventuallySync("the agent's status", () => {
          return /agent started/.test(up.output()) ? true : undefined
        })
        const stop = yield* Processes.run(home, ["agent", "stop"])
        assert.strictEqual(stop.code, 0, stop.stderr)
        assert.include(stop.stderr, 'the agent runs inside "cmdop up" (pid')
        assert.include(stop.stderr, "which also runs the relay: stopping it stops both")
        assert.match(stop.stdout, /^stopped "cmdop up" \(pid \d+\): its relay and its agent\n$/)
        const said = yield* eventuallySync("up's last line", () =>
          /up: stopped the agent \(machine \S+\) and the relay \(127\.0\.0\.1:\d+, http \S+\)/.test(up.output())
            ? up.output()
            : undefined
        )
        assert.include(said, `127.0.0.1:${grpc}`)
      }),
    90_000
  )

  it.scopedLive(
    "on non-default ports, login finds the relay's web address up recorded (Ctrl-C there exits 130, up 0); once up is gone, it says it cannot reach it",
    () =>
      Effect.gen(function* () {
        const home = yield* TempHome.make("cmdop-up-login-")
        const grpc = yield* freePort
        const http = yield* freePort
        const up = yield* Processes.daemon(
          home,
          ["up", "--grpc-port", String(grpc), "--http-port", String(http), "--data-dir", path.join(home, "relay")],
          /cmdop is up/,
          { timeoutMs: 40_000 }
        )
        const file = JSON.parse(fs.readFileSync(path.join(home, ".cmdop", "ssh_workspaces.json"), "utf8"))
        assert.deepInclude(file.workspaces, {
          name: "local",
          api_key: file.workspaces[0].api_key,
          server: `127.0.0.1:${grpc}`,
          web_url: `http://127.0.0.1:${http}`
        })

        // Neither --server nor --web-url: the active workspace's relay, and the web address recorded with it.
        const login = yield* Processes.daemon(home, ["login", "--no-browser"], /code [A-Z]{4}-[A-Z]{4}/)
        assert.include(login.output(), `To sign in, open http://127.0.0.1:${http}/device and enter the code `)
        // Ctrl-C while it waits for the browser: not signed in, so not 0 (`cmdop login && …` went on), but the status
        // of a process killed by SIGINT; SIGTERM's likewise.
        yield* login.stop("SIGINT")
        assert.strictEqual(login.child.exitCode, 130, login.output())
        // --server alone, as docs/cli.md says to type it: the web address recorded for that relay.
        const named = yield* Processes.daemon(
          home,
          ["login", "--server", `127.0.0.1:${grpc}`, "--no-browser"],
          /code [A-Z]{4}-[A-Z]{4}/
        )
        assert.include(named.output(), `open http://127.0.0.1:${http}/device`)
        yield* named.stop("SIGTERM")
        assert.strictEqual(named.child.exitCode, 143, named.output())

        // up is a service: a signal is how it stops, and that is a clean stop.
        yield* up.stop("SIGINT")
        assert.strictEqual(up.child.exitCode, 0, up.output())
        const gone = yield* Processes.run(home, ["login", "--no-browser"])
        assert.strictEqual(gone.code, 255, gone.stderr)
        assert.strictEqual(gone.stderr.trim().split("\n").length, 1, gone.stderr)
        assert.include(
          gone.stderr,
          `cmdop: cannot reach the relay's login at http://127.0.0.1:${http} (recorded for relay 127.0.0.1:${grpc} in workspace "local"): nothing listens there (connection refused); is the relay running?`
        )
      }),
    90_000
  )
})
