/**
 * `cmdop agent start --server a,b`: a list of relay nodes is checked entry by entry before anything starts, with
 * one error naming the bad entry and showing the form to use; `cmdop agent status` names the one node the daemon
 * is on (or trying), next to the list.
 */
import * as TempHome from "@cmdop/test-helpers/TempHome"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { cli } from "./support.js"

/** A `daemon.status` as a live daemon (this process) on a list of three nodes writes it. */
const writeStatus = (home: string, state: "ONLINE" | "CONNECTING", relay: string) => {
  fs.mkdirSync(path.join(home, ".cmdop"), { recursive: true, mode: 0o700 })
  const status = {
    state,
    pid: process.pid,
    since: "2026-11-27T10:00:00Z",
    server: "https://relay-1:50051,https://relay-2:50051,https://relay-3:50051",
    relay,
    workspace: "acme",
    machine_id: "0b9f5c1e-8a4d-4c7e-9f21-3d6b2a7e5c10"
  }
  fs.writeFileSync(path.join(home, ".cmdop", "daemon.status"), JSON.stringify(status), { mode: 0o600 })
}

describe("agent start --server list", () => {
  it.scopedLive("an entry without a port, or an empty one, is refused with the form to use", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-server-list-")
      const noPort = yield* cli(home, ["agent", "start", "--foreground", "--server", "relay-1:50051,relay-2"])
      assert.strictEqual(noPort.code, 255)
      assert.include(noPort.stderr, '"relay-2" is not a relay address')
      assert.include(noPort.stderr, "--server relay-1:50051,relay-2:50051")
      const empty = yield* cli(home, ["agent", "start", "--foreground", "--server", "relay-1:50051,,relay-2:50051"])
      assert.strictEqual(empty.code, 255)
      assert.include(empty.stderr, "an empty entry is not a relay address")
    })
  )

  it.scopedLive("agent status names the node in use, and the one it is connecting to, besides the list", () =>
    Effect.gen(function* () {
      const home = yield* TempHome.make("cmdop-server-list-status-")
      writeStatus(home, "ONLINE", "https://relay-2:50051")
      const human = yield* cli(home, ["agent", "status"])
      assert.strictEqual(human.code, 0, human.stderr)
      assert.match(human.stdout, /^server\s+https:\/\/relay-1:50051,https:\/\/relay-2:50051,https:\/\/relay-3:50051$/m)
      assert.match(human.stdout, /^relay\s+https:\/\/relay-2:50051$/m)
      const json = yield* cli(home, ["agent", "status", "--json"])
      assert.strictEqual(json.code, 0, json.stderr)
      assert.strictEqual(JSON.parse(json.stdout).relay, "https://relay-2:50051")

      writeStatus(home, "CONNECTING", "https://relay-3:50051")
      const trying = yield* cli(home, ["agent", "status"])
      assert.match(trying.stdout, /^relay\s+https:\/\/relay-3:50051 \(connecting\)$/m)
    })
  )
})
