import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, layer } from "@effect/vitest"
import { workspaceStoreContract } from "@cmdop/domain/testing/WorkspaceStoreContract"
import * as FileLock from "@cmdop/node/FileLock"
import * as WorkspaceStoreLive from "@cmdop/node/WorkspaceStoreLive"
import * as Bundle from "./fixtures/bundle.js"
import * as Processes from "./fixtures/processes.js"

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

layer(Bundle.layer, { excludeTestServices: true, timeout: "60 seconds" })("WorkspaceStoreLive on disk", (it) => {
  it.scoped("creates the file 0600 in a 0700 directory, with no temp or lock files left behind", () =>
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

  it.scoped("a file open to others (0644) is read, set back to 0600, and the caller told once", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const file = path.join(home, ".cmdop", "ssh_workspaces.json")
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 })
      fs.writeFileSync(file, JSON.stringify({ active: "", workspaces: [] }), { mode: 0o644 })
      fs.chmodSync(file, 0o644)
      const told: Array<string> = []
      const store = yield* WorkspaceStoreLive.make(file, (p) => p, {
        onLooseMode: (message) => Effect.sync(() => void told.push(message))
      }).pipe(Effect.provide(NodeFileSystem.layer))
      const loaded = yield* store.load
      assert.deepStrictEqual(loaded.workspaces, [])
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      assert.deepStrictEqual(told, [
        `${file} was open to other users of this machine (mode 0644) and holds API keys: it is 0600 now; if someone else could have read it, have its keys rotated`
      ])
      // Opened up again: tightened again, not told twice in one process.
      fs.chmodSync(file, 0o640)
      yield* store.update((f) => Effect.succeed([undefined, f] as const))
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      assert.strictEqual(told.length, 1)
      // A private file says nothing.
      const quiet: Array<string> = []
      const again = yield* WorkspaceStoreLive.make(file, (p) => p, {
        onLooseMode: (message) => Effect.sync(() => void quiet.push(message))
      }).pipe(Effect.provide(NodeFileSystem.layer))
      yield* again.load
      assert.deepStrictEqual(quiet, [])
    })
  )

  it.scoped("a stale lock left by a dead process is taken over", () =>
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

  it.scoped("a fresh lock of a live process is waited for, not stolen", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const file = path.join(home, ".cmdop", "ssh_workspaces.json")
      fs.mkdirSync(path.dirname(file), { recursive: true })
      // Another process takes the lock and keeps it 1 s (so the bound below holds however late "held" arrives).
      const holder = Processes.start(yield* Bundle.StoreWriter, ["hold", file, "1000"])
      yield* Effect.addFinalizer(() => Effect.sync(() => holder.child.kill("SIGKILL")))
      assert.strictEqual(yield* Effect.promise(() => holder.nextLine()), "held")
      const started = Date.now()
      const store = yield* open(file)
      yield* store.update((f) => Effect.succeed([undefined, { ...f, active: "" }] as const))
      assert.isAtLeast(Date.now() - started, 250)
      assert.strictEqual((yield* Processes.ended(holder)).code, 0)
    })
  )

  it.scoped("a lock whose holder is killed (kill -9) is free at once", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const file = path.join(home, ".cmdop", "ssh_workspaces.json")
      fs.mkdirSync(path.dirname(file), { recursive: true })
      const holder = Processes.start(yield* Bundle.StoreWriter, ["hold", file, "600000"])
      assert.strictEqual(yield* Effect.promise(() => holder.nextLine()), "held")
      assert.strictEqual(fs.readFileSync(file + ".lock", "utf8"), `${holder.pid}\n`)
      holder.child.kill("SIGKILL")
      assert.strictEqual((yield* Processes.ended(holder)).signal, "SIGKILL")
      const store = yield* open(file)
      const started = Date.now()
      yield* store.update((f) => Effect.succeed([undefined, { ...f, active: "" }] as const))
      // The old lock waited 2 s for a dead holder's lock to age; a kernel lock is free when its holder dies.
      assert.isBelow(Date.now() - started, 1_500)
      assert.deepStrictEqual(fs.readdirSync(path.dirname(file)), ["ssh_workspaces.json"])
    })
  )

  it.scoped("an empty or garbage lock file (a holder killed right after creating it) is free", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const file = path.join(home, ".cmdop", "ssh_workspaces.json")
      fs.mkdirSync(path.dirname(file), { recursive: true })
      const store = yield* open(file)
      for (const content of ["", "\u0000\u0000garbage", `${process.pid} held by a live pid, but not locked\n`]) {
        fs.writeFileSync(file + ".lock", content)
        const started = Date.now()
        yield* store.update((f) => Effect.succeed([undefined, { ...f, active: "" }] as const))
        assert.isBelow(Date.now() - started, 1_500)
        assert.isFalse(fs.existsSync(file + ".lock"))
      }
    })
  )

  it.scoped("two holders in one process exclude each other; the waiter's timeout names the holder", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const lock = path.join(home, "state.lock")
      yield* FileLock.acquire(lock)
      const exit = yield* Effect.exit(Effect.scoped(FileLock.acquire(lock, { timeout: "200 millis" })))
      assert.isTrue(exit._tag === "Failure")
      const error = exit._tag === "Failure" ? Cause.failureOption(exit.cause) : Option.none()
      assert.isTrue(Option.isSome(error) && error.value instanceof FileLock.LockTimeout)
      assert.strictEqual(
        Option.isSome(error) && error.value._tag === "LockTimeout" ? error.value.holder : "",
        `${process.pid}`
      )
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.scoped("a write removes the temp files its dead writers left, and only those", () =>
    Effect.gen(function* () {
      const home = yield* tempHome
      const file = path.join(home, ".cmdop", "ssh_workspaces.json")
      const dir = path.dirname(file)
      fs.mkdirSync(dir, { recursive: true })
      const dead = Processes.start(yield* Bundle.StoreWriter, ["hold", file, "600000"])
      assert.strictEqual(yield* Effect.promise(() => dead.nextLine()), "held")
      dead.child.kill("SIGKILL")
      yield* Processes.ended(dead)
      const leftovers = [`.ssh_workspaces.json.${dead.pid}.abc.tmp`]
      // A live writer's temp file, and temp files of other files (even with a longer name sharing the prefix).
      const kept = [
        `.ssh_workspaces.json.${process.ppid}.live.tmp`,
        `.agent.json.${dead.pid}.other.tmp`,
        `.ssh_workspaces.json.bak.${dead.pid}.other.tmp`
      ]
      for (const name of [...leftovers, ...kept]) fs.writeFileSync(path.join(dir, name), "ck_live_leaked")
      const store = yield* open(file)
      yield* store.update((f) => Effect.succeed([undefined, { ...f, active: "" }] as const))
      assert.deepStrictEqual(fs.readdirSync(dir).sort(), [...kept, "ssh_workspaces.json"].sort())
    })
  )

  it.scoped("a crash between temp write and rename leaves the old file intact", () =>
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
