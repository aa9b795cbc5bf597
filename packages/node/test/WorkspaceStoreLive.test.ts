import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { workspaceStoreContract } from "@cmdop/domain/testing/WorkspaceStoreContract"
import * as WorkspaceStoreLive from "@cmdop/node/WorkspaceStoreLive"

const tempHome = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "cmdop-store-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const open = (file: string) => WorkspaceStoreLive.make(file).pipe(Effect.provide(NodeFileSystem.layer))

// The durable store: a real file in a temp dir; each instance is a separate loader of that file.
workspaceStoreContract("file", (initial) =>
  Effect.gen(function* () {
    const home = yield* tempHome
    const file = path.join(home, ".cmdop", "ssh_workspaces.json")
    if (initial !== undefined) {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
      fs.writeFileSync(file, initial, { mode: 0o600 })
    }
    return {
      store: yield* open(file),
      readRaw: Effect.sync(() => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined)),
      writeRaw: (text) => Effect.sync(() => fs.writeFileSync(file, text)),
      reopen: open(file)
    }
  })
)

describe("WorkspaceStoreLive on disk", () => {
  it.scopedLive("creates the file 0600 in a 0700 directory, with no temp or lock files left behind", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const file = path.join(home, ".cmdop", "ssh_workspaces.json")
      const store = yield* open(file)
      yield* store.update((f) => Effect.succeed([undefined, { ...f, active: "" }] as const))
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      assert.strictEqual(fs.statSync(path.dirname(file)).mode & 0o777, 0o700)
      assert.deepStrictEqual(fs.readdirSync(path.dirname(file)), ["ssh_workspaces.json"])
    })
  )

  it.scopedLive("a stale lock left by a dead process is taken over", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const file = path.join(home, ".cmdop", "ssh_workspaces.json")
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file + ".lock", "999999999 abc\n")
      const old = new Date(Date.now() - 60_000)
      fs.utimesSync(file + ".lock", old, old)
      const store = yield* open(file)
      yield* store.update((f) => Effect.succeed([undefined, { ...f, active: "" }] as const))
      assert.isFalse(fs.existsSync(file + ".lock"))
      assert.isTrue(fs.existsSync(file))
    })
  )

  it.scopedLive("a fresh lock of a live process is waited for, not stolen", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const file = path.join(home, ".cmdop", "ssh_workspaces.json")
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file + ".lock", `${process.pid} held\n`)
      const store = yield* open(file)
      const started = Date.now()
      setTimeout(() => fs.rmSync(file + ".lock"), 300)
      yield* store.update((f) => Effect.succeed([undefined, { ...f, active: "" }] as const))
      assert.isAtLeast(Date.now() - started, 250)
    })
  )

  it.scopedLive("a crash between temp write and rename leaves the old file intact", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const file = path.join(home, ".cmdop", "ssh_workspaces.json")
      const store = yield* open(file)
      yield* store.update((f) => Effect.succeed([undefined, { ...f, active: "" }] as const))
      const before = fs.readFileSync(file, "utf8")
      // The update's own function dies mid-way: nothing may be written.
      const exit = yield* Effect.exit(store.update(() => Effect.die("boom")))
      assert.isTrue(exit._tag === "Failure")
      assert.strictEqual(fs.readFileSync(file, "utf8"), before)
      assert.deepStrictEqual(fs.readdirSync(path.dirname(file)), ["ssh_workspaces.json"])
    })
  )
})
