/**
 * `cmdop up` and `cmdop agent stop` on the same machine, as real processes: the stop says that it stops the
 * whole `up` (relay included), and `up` says what it stopped when it ends. Its relay has accounts, so the README's
 * sign-in and `cmdop login` work on it.
 */
import { assert, describe, it } from "@effect/vitest"
import { eventuallySync } from "@cmdop/test-helpers/Eventually"
import { freePort } from "@cmdop/test-helpers/FreePort"
import * as TempHome from "@cmdop/test-helpers/TempHome"
import * as Processes from "@cmdop/testkit/Processes"
import * as Effect from "effect/Effect"
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
})
