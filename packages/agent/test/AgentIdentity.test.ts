/**
 * `~/.cmdop/agent.json`: created once (0600, UUID v4 id, 32-byte base64url secret), stable afterwards, updated in
 * place, unknown fields kept, a corrupt file reported by name and never overwritten.
 */
import { assert, describe, it } from "@effect/vitest"
import * as AgentIdentity from "@cmdop/agent/AgentIdentity"
import * as AgentLinkCodec from "@cmdop/protocol/AgentLinkCodec"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { tempDir } from "./helpers.js"

const tempHome = tempDir("cmdop-agent-id-")

const inHome = <A, E>(home: string, effect: Effect.Effect<A, E, FileSystem.FileSystem | CmdopPaths.CmdopPaths>) =>
  Effect.provide(effect, Layer.merge(NodeFileSystem.layer, CmdopPaths.layerHome(home)))

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe("AgentIdentity", () => {
  it.scopedLive("creates agent.json 0600 with a v4 id and a 32-byte secret, then keeps them", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const file = path.join(home, ".cmdop", "agent.json")
      assert.isTrue(Option.isNone(yield* inHome(home, AgentIdentity.load)))
      const first = yield* inHome(home, AgentIdentity.loadOrCreate())
      assert.match(first.machine_id, UUID_V4)
      const secret = Redacted.value(first.machine_secret)
      assert.match(secret, /^[A-Za-z0-9_-]{43}$/)
      assert.strictEqual(Buffer.from(secret, "base64url").length, 32)
      assert.strictEqual(first.hostname, AgentIdentity.defaultHostname())
      assert.strictEqual(first.name, first.hostname)
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      assert.strictEqual(fs.statSync(path.dirname(file)).mode & 0o777, 0o700)
      assert.deepStrictEqual(JSON.parse(fs.readFileSync(file, "utf8")), {
        machine_id: first.machine_id,
        machine_secret: secret,
        hostname: first.hostname,
        name: first.name
      })
      // The secret never shows in a printout of the identity.
      assert.notInclude(String(first.machine_secret), secret)
      assert.deepStrictEqual(fs.readdirSync(path.dirname(file)).sort(), ["agent.json"])

      const mtime = fs.statSync(file).mtimeMs
      const again = yield* inHome(home, AgentIdentity.loadOrCreate())
      assert.strictEqual(again.machine_id, first.machine_id)
      assert.strictEqual(Redacted.value(again.machine_secret), secret)
      assert.strictEqual(fs.statSync(file).mtimeMs, mtime, "nothing to change: not rewritten")
    })
  )

  it.scopedLive("hostname, name and server are updated in place; id, secret and unknown fields kept", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const file = path.join(home, ".cmdop", "agent.json")
      const first = yield* inHome(home, AgentIdentity.loadOrCreate({ hostname: "web-1", name: "Web one" }))
      assert.strictEqual(first.hostname, "web-1")
      assert.strictEqual(first.name, "Web one")
      const raw = JSON.parse(fs.readFileSync(file, "utf8"))
      fs.writeFileSync(file, JSON.stringify({ ...raw, future_field: { x: 1 } }))
      const next = yield* inHome(home, AgentIdentity.loadOrCreate({ name: "Web 1", server: "relay:50051" }))
      assert.strictEqual(next.machine_id, first.machine_id)
      assert.strictEqual(Redacted.value(next.machine_secret), Redacted.value(first.machine_secret))
      assert.strictEqual(next.hostname, "web-1")
      assert.strictEqual(next.name, "Web 1")
      assert.strictEqual(next.server, "relay:50051")
      const written = JSON.parse(fs.readFileSync(file, "utf8"))
      assert.deepStrictEqual(written.future_field, { x: 1 })
      assert.strictEqual(written.name, "Web 1")
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
    })
  )

  it.scopedLive("a corrupt file is an error naming it, and is left untouched", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const file = path.join(home, ".cmdop", "agent.json")
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
      for (const text of [
        "{ not json",
        JSON.stringify({ machine_id: "nope", machine_secret: "x", hostname: "h", name: "n" })
      ]) {
        fs.writeFileSync(file, text, { mode: 0o600 })
        const exit = yield* Effect.exit(inHome(home, AgentIdentity.loadOrCreate({ name: "other" })))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
          const error = exit.cause.error
          assert.strictEqual(error._tag, "AgentIdentityError")
          assert.strictEqual(error.reason, "Corrupt")
          assert.include(error.message, "agent.json")
          assert.include(error.message, "left unchanged")
        } else assert.fail("expected a typed failure")
        assert.strictEqual(fs.readFileSync(file, "utf8"), text)
      }
    })
  )

  it.scopedLive("an invalid hostname or display name is refused before anything is written", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const exit = yield* Effect.exit(inHome(home, AgentIdentity.loadOrCreate({ hostname: "bad host!" })))
      assert.isTrue(Exit.isFailure(exit))
      assert.isFalse(fs.existsSync(path.join(home, ".cmdop", "agent.json")))
      // So is a display name with control characters (printed as is in other people's terminals).
      const named = yield* Effect.exit(inHome(home, AgentIdentity.loadOrCreate({ name: "evil\u001b[31mred" })))
      assert.isTrue(Exit.isFailure(named))
      assert.isFalse(fs.existsSync(path.join(home, ".cmdop", "agent.json")))
    })
  )

  it.scopedLive("concurrent first runs agree on one identity", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const all = yield* Effect.all(
        Array.from({ length: 8 }, () => inHome(home, AgentIdentity.loadOrCreate())),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(new Set(all.map((i) => i.machine_id)).size, 1)
    })
  )

  it("the presented identity carries the identity, os and version (as on the wire)", () => {
    const identity = AgentIdentity.Identity.make({
      machine_id: "0b7c2a4e-1d3f-4a5b-8c6d-7e8f9a0b1c2d" as never,
      machine_secret: Redacted.make("s".repeat(43)),
      hostname: "h1",
      name: "n1"
    })
    const wire = AgentLinkCodec.identityToWire(AgentIdentity.toMachineIdentity(identity, "9.9.9"))
    assert.deepStrictEqual(wire, {
      machineId: identity.machine_id,
      machineSecret: "s".repeat(43),
      hostname: "h1",
      name: "n1",
      os: `${process.platform} ${os.release()}`,
      agentVersion: "9.9.9"
    })
  })
})
