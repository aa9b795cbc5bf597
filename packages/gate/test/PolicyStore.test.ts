import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Schedule } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Action } from "../src/Policy.js"
import type { PolicyStoreOptions } from "../src/PolicyStore.js"
import { make } from "../src/PolicyStore.js"
import type { GateRequest } from "../src/Request.js"

const guestRuns = (...argv: ReadonlyArray<string>): GateRequest => ({ caller: { kind: "guest" }, mode: "exec", argv })
const allowGuest = (...commands: ReadonlyArray<string>) =>
  `rules:\n  - action: allow\n    caller: guest\n    command: ${JSON.stringify(commands)}\n`

const tempFile = Effect.acquireRelease(
  Effect.sync(() => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "gate-store-")), "permissions.yaml")),
  (file) => Effect.sync(() => fs.rmSync(path.dirname(file), { recursive: true, force: true }))
)

/** Writes like an editor that saves atomically: a temp file renamed over the old one. */
const save = (file: string, text: string) =>
  Effect.sync(() => {
    fs.writeFileSync(`${file}.tmp`, text)
    fs.renameSync(`${file}.tmp`, file)
  })

const open = (options: PolicyStoreOptions) => make(options).pipe(Effect.provide(NodeFileSystem.layer))

/** Re-checks until `ok` holds (the store reloads on its own fiber), failing after 10 s. */
const eventually = <A>(check: Effect.Effect<A>, ok: (a: A) => boolean) =>
  check.pipe(
    Effect.filterOrFail(ok, () => "not yet"),
    Effect.retry(Schedule.spaced(Duration.millis(20))),
    Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => new Error("condition not reached in 10 s") })
  )

describe("PolicyStore", () => {
  it.scopedLive("an edit changes the next decision; a broken edit keeps the old policy and reports why", () =>
    Effect.gen(function* () {
      const file = yield* tempFile
      yield* save(file, allowGuest("uptime"))
      const store = yield* open({ path: file, pollInterval: Duration.hours(1) })
      assert.strictEqual((yield* store.decide(guestRuns("id"))).action, "deny")
      assert.strictEqual((yield* store.decide(guestRuns("uptime"))).action, "allow")

      yield* save(file, allowGuest("uptime", "id"))
      const action = (request: GateRequest) => Effect.map(store.decide(request), (d): Action => d.action)
      yield* eventually(action(guestRuns("id")), (a) => a === "allow")

      yield* save(file, "rules:\n  - action: allw\n    caller: guest\n")
      const broken = yield* eventually(store.status, (s) => s.error !== undefined)
      assert.strictEqual(
        broken.error!.message,
        `${file}:2: rules[0].action: "allw" is not valid (hint: action is one of allow, deny, ask)`
      )
      assert.strictEqual((yield* store.decide(guestRuns("id"))).action, "allow", "the last good policy still decides")

      yield* save(file, allowGuest("uptime"))
      const fixed = yield* eventually(store.status, (s) => s.error === undefined)
      assert.deepStrictEqual(fixed.policy!.rules[0]!.commands, ["uptime"])
      assert.strictEqual((yield* store.decide(guestRuns("id"))).action, "deny")
    })
  )

  it.scopedLive("without a watcher, the poll picks up edits", () =>
    Effect.gen(function* () {
      const file = yield* tempFile
      yield* save(file, allowGuest("uptime"))
      const store = yield* open({ path: file, pollInterval: Duration.millis(50), watch: false })
      fs.writeFileSync(file, allowGuest("id"))
      yield* eventually(
        Effect.map(store.decide(guestRuns("id")), (d) => d.action),
        (a) => a === "allow"
      )
    })
  )

  it.scopedLive("no file: no gate until one appears", () =>
    Effect.gen(function* () {
      const file = yield* tempFile
      const store = yield* open({ path: file, pollInterval: Duration.millis(50) })
      const none = yield* store.status
      assert.isUndefined(none.policy)
      const d = yield* store.decide(guestRuns("cat", "/etc/shadow"))
      assert.deepStrictEqual([d.action, d.configured], ["allow", false])
      yield* save(file, allowGuest("uptime"))
      yield* eventually(
        Effect.map(store.decide(guestRuns("cat", "/etc/shadow")), (d) => d.action),
        (a) => a === "deny"
      )
    })
  )

  it.scopedLive("an invalid file at start: file defaults (guests denied, keys allowed) and the error", () =>
    Effect.gen(function* () {
      const file = yield* tempFile
      yield* save(file, "rules: [\n")
      const store = yield* open({ path: file, pollInterval: Duration.hours(1) })
      const status = yield* store.status
      assert.match(status.error!.message, /permissions\.yaml:\d+: not valid YAML/)
      assert.strictEqual((yield* store.decide(guestRuns("uptime"))).action, "deny")
      assert.strictEqual(
        (yield* store.decide({ caller: { kind: "key" }, mode: "exec", argv: ["uptime"] })).action,
        "allow"
      )
    })
  )

  it.scopedLive("a removed file keeps the last policy and says so", () =>
    Effect.gen(function* () {
      const file = yield* tempFile
      yield* save(file, allowGuest("uptime"))
      const store = yield* open({ path: file, pollInterval: Duration.millis(50) })
      fs.rmSync(file)
      const status = yield* eventually(store.status, (s) => s.error !== undefined)
      assert.match(status.error!.message, /the file was removed; keeping the last policy/)
      assert.strictEqual((yield* store.decide(guestRuns("id"))).action, "deny")
    })
  )
})
