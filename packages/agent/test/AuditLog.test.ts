/**
 * The machine's audit log: one contract for the in-memory and the file-backed log (round trip in order, invalid
 * entries refused, 500 concurrent appends all there), the line codec's round-trip law, and what only the file has:
 * the exact JSON lines, modes 0600/0700, creation on demand under `stateDir`, rotation by size keeping three old
 * files, two independent writers on one file, and a corrupt line named by file and number.
 */
import { assert, describe, it } from "@effect/vitest"
import * as AuditLog from "@cmdop/agent/AuditLog"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Arbitrary from "effect/Arbitrary"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { build } from "esbuild"
import { entry } from "./fixtures/auditEntry.js"
import { tempDir as makeTempDir } from "./helpers.js"

type Log = AuditLog.AuditLog["Type"]

const tempDir = makeTempDir("cmdop-audit-")

const fileLog = (file: string, options: AuditLog.Options = {}) =>
  AuditLog.makeFile(file, options).pipe(Effect.provide(NodeFileSystem.layer))

const auditLogContract = (label: string, make: Effect.Effect<Log, never, Scope.Scope>) =>
  describe(`AuditLog contract: ${label}`, () => {
    it.scopedLive("appended entries read back equal, in order; an empty log reads as nothing", () =>
      Effect.gen(function* () {
        const log = yield* make
        assert.deepStrictEqual(yield* log.read, [])
        const base = { caller: "ck_live_abcd", caller_kind: "key", share_id: null, session_id: "s-1" } as const
        const entries: ReadonlyArray<AuditLog.Entry> = [
          {
            ts: AuditLog.timestamp(1),
            event: "session_open",
            decision: "allow",
            ...base,
            mode: "exec",
            command_digest: AuditLog.digestArgv(["uptime"])
          },
          entry(2, { caller: "share lnk_9", caller_kind: "guest", share_id: "lnk_9" }),
          {
            ts: AuditLog.timestamp(3),
            event: "session_end",
            ...base,
            mode: "exec",
            exit_code: 0,
            reason: "exit",
            duration_ms: 12
          }
        ]
        for (const e of entries) yield* log.append(e)
        assert.deepStrictEqual(yield* log.read, entries)
      })
    )

    it.scopedLive("an entry that does not encode is refused and nothing is written", () =>
      Effect.gen(function* () {
        const log = yield* make
        const bad = { ...entry(1), ts: "yesterday" } as unknown as AuditLog.Entry
        const result = yield* Effect.either(log.append(bad))
        assert.isTrue(Either.isLeft(result))
        if (Either.isLeft(result)) assert.strictEqual(result.left.reason, "Invalid")
        assert.deepStrictEqual(yield* log.read, [])
      })
    )

    it.scopedLive("500 appends from 50 fibers at once are all there, each once and whole", () =>
      Effect.gen(function* () {
        const log = yield* make
        yield* Effect.forEach(
          Array.from({ length: 50 }, (_, f) => f),
          (f) =>
            Effect.forEach(
              Array.from({ length: 10 }, (_, i) => f * 10 + i),
              (n) => log.append(entry(n))
            ),
          { concurrency: "unbounded", discard: true }
        )
        const read = yield* log.read
        assert.strictEqual(read.length, 500)
        assert.deepStrictEqual(
          read.map((e) => e.bytes).sort((a, b) => a! - b!),
          Array.from({ length: 500 }, (_, n) => n)
        )
      })
    )
  })

auditLogContract("memory", AuditLog.makeMemory)
auditLogContract(
  "file",
  Effect.flatMap(tempDir, (dir) => fileLog(path.join(dir, "state", "cmdop", "audit.log")))
)

describe("AuditLog lines", () => {
  it.prop("every entry round-trips through its JSON line", [Arbitrary.make(AuditLog.Entry)], ([e]) => {
    const line = Schema.encodeSync(AuditLog.EntryLine)(e)
    assert.notInclude(line, "\n")
    assert.deepStrictEqual(Schema.decodeUnknownSync(AuditLog.EntryLine)(line), e)
  })

  it.prop(
    "the fast line writer says exactly what the EntryLine codec says",
    [Arbitrary.make(AuditLog.Entry)],
    ([e]) => {
      const fast = Effect.runSync(AuditLog.encodeEntry("x", e))
      assert.strictEqual(fast, Schema.encodeSync(AuditLog.EntryLine)(e))
    }
  )

  it("callerFields maps the wire's caller; empty means unknown", () => {
    assert.deepStrictEqual(AuditLog.callerFields({ kind: "guest", principal: "share l1", shareId: "l1" }), {
      caller: "share l1",
      caller_kind: "guest",
      share_id: "l1"
    })
    assert.deepStrictEqual(AuditLog.callerFields({ kind: "", principal: "", shareId: "" }), {
      caller: "",
      caller_kind: null,
      share_id: null
    })
    assert.deepStrictEqual(AuditLog.callerFields(undefined), { caller: "", caller_kind: null, share_id: null })
  })

  it("digests are SHA-256 hex; exec argv is joined by NUL", () => {
    assert.strictEqual(AuditLog.digest(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert.strictEqual(AuditLog.digestArgv(["a", "b"]), AuditLog.digest("a\0b"))
    assert.notStrictEqual(AuditLog.digestArgv(["a b"]), AuditLog.digestArgv(["a", "b"]))
  })
})

describe("AuditLog file", () => {
  it.scopedLive("writes exact JSON lines, created on demand under stateDir: file 0600, directory 0700", () =>
    Effect.gen(function* () {
      const home = yield* tempDir
      const paths = CmdopPaths.forHome(home)
      const file = path.join(paths.stateDir, AuditLog.FILE_NAME)
      assert.strictEqual(file, path.join(home, ".local", "state", "cmdop", "audit.log"))
      const log = yield* AuditLog.make().pipe(
        Effect.provide(NodeFileSystem.layer),
        Effect.provideService(CmdopPaths.CmdopPaths, paths)
      )
      assert.isFalse(fs.existsSync(paths.stateDir), "nothing is created before the first line")
      yield* log.append({
        ts: AuditLog.timestamp(Date.UTC(2025, 0, 31, 12, 0, 0, 5)),
        event: "session_open",
        decision: "allow",
        caller: "share lnk_1",
        caller_kind: "guest",
        share_id: "lnk_1",
        session_id: "0b8c",
        mode: "pty",
        command_digest: AuditLog.digest("/bin/sh")
      })
      yield* log.append(entry(3, { session_id: "0b8c" }))
      const text = fs.readFileSync(file, "utf8")
      assert.strictEqual(
        text,
        `{"ts":"2025-01-31T12:00:00.005Z","event":"session_open","decision":"allow","caller":"share lnk_1",` +
          `"caller_kind":"guest","share_id":"lnk_1","session_id":"0b8c","mode":"pty",` +
          `"command_digest":"${AuditLog.digest("/bin/sh")}"}\n` +
          `{"ts":"2023-11-14T22:13:20.003Z","event":"input","caller":"ck_live_abcd","caller_kind":"key",` +
          `"share_id":null,"session_id":"0b8c","mode":"pty","bytes":3}\n`
      )
      for (const line of text.trimEnd().split("\n")) assert.isObject(JSON.parse(line))
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      assert.strictEqual(fs.statSync(paths.stateDir).mode & 0o777, 0o700)
    })
  )

  it.scopedLive("the layer follows $XDG_STATE_HOME when it is set", () =>
    Effect.gen(function* () {
      const home = yield* tempDir
      const paths = CmdopPaths.forHome(home, path.join(home, "xdg-state"))
      const log = yield* AuditLog.AuditLog.pipe(
        Effect.provide(
          AuditLog.layer().pipe(
            Layer.provide(NodeFileSystem.layer),
            Layer.provide(Layer.succeed(CmdopPaths.CmdopPaths, paths))
          )
        )
      )
      yield* log.append(entry(1))
      assert.isTrue(fs.existsSync(path.join(home, "xdg-state", "cmdop", "audit.log")))
    })
  )

  it.scopedLive("rotates before a line would pass maxBytes, keeping three old files; read spans them in order", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = path.join(dir, "audit.log")
      const log = yield* fileLog(file, { maxBytes: 1000 })
      const lineBytes = Buffer.byteLength(Schema.encodeSync(AuditLog.EntryLine)(entry(100))) + 1
      const perFile = Math.floor(1000 / lineBytes)
      const total = perFile * 6 + 2
      for (let n = 100; n < 100 + total; n++) yield* log.append(entry(n))
      const names = fs.readdirSync(dir).sort()
      assert.deepStrictEqual(names, ["audit.log", "audit.log.1", "audit.log.2", "audit.log.3"])
      for (const name of names) {
        const size = fs.statSync(path.join(dir, name)).size
        assert.isAtMost(size, 1000, name)
        assert.strictEqual(fs.statSync(path.join(dir, name)).mode & 0o777, 0o600, name)
      }
      for (const name of ["audit.log.1", "audit.log.2", "audit.log.3"])
        assert.strictEqual(fs.statSync(path.join(dir, name)).size, perFile * lineBytes, name)
      assert.strictEqual(fs.statSync(file).size, 2 * lineBytes)
      // What is kept is the newest 3 full files plus the current one, oldest first, without a gap.
      const kept = (yield* log.read).map((e) => e.bytes!)
      const first = 100 + total - (3 * perFile + 2)
      assert.deepStrictEqual(
        kept,
        Array.from({ length: 3 * perFile + 2 }, (_, i) => first + i)
      )
    })
  )

  it.scopedLive("two independent writers (as two processes) on one file: every line lands whole", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = path.join(dir, "audit.log")
      const a = yield* fileLog(file)
      const b = yield* fileLog(file)
      yield* Effect.forEach(
        Array.from({ length: 400 }, (_, n) => n),
        (n) => (n % 2 === 0 ? a : b).append(entry(n, { caller: "x".repeat(n % 50) })),
        { concurrency: 40, discard: true }
      )
      const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n")
      assert.strictEqual(lines.length, 400)
      const seen = lines.map((line) => Schema.decodeUnknownSync(AuditLog.EntryLine)(line).bytes).sort((x, y) => x! - y!)
      assert.deepStrictEqual(
        seen,
        Array.from({ length: 400 }, (_, n) => n)
      )
    })
  )

  it.scopedLive("a line that is not an entry fails read, naming the file and the line", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = path.join(dir, "audit.log")
      const log = yield* fileLog(file)
      yield* log.append(entry(1))
      fs.appendFileSync(file, '{"ts":"torn\n')
      const result = yield* Effect.either(log.read)
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) {
        assert.strictEqual(result.left.reason, "Corrupt")
        assert.strictEqual(result.left.line, 2)
        assert.include(result.left.message, `${file}:2`)
      }
    })
  )

  it.scopedLive("the file stays open: a line is in the file as soon as append returns, one write(2) per line", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = path.join(dir, "audit.log")
      const log = yield* fileLog(file)
      yield* log.append(entry(1))
      const inode = fs.statSync(file).ino
      const fds = () => fs.readdirSync("/proc/self/fd").filter((fd) => safeReadlink(`/proc/self/fd/${fd}`) === file)
      assert.strictEqual(fds().length, 1, "one descriptor on audit.log after the first line")
      for (let n = 2; n <= 50; n++) {
        yield* log.append(entry(n))
        assert.strictEqual(fs.readFileSync(file, "utf8").trimEnd().split("\n").length, n)
      }
      assert.strictEqual(fds().length, 1, "still the same single descriptor")
      assert.strictEqual(fs.statSync(file).ino, inode)
    })
  )

  it.scopedLive("two writers rotating one small file: every line is kept, whole, across the rotated files", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = path.join(dir, "audit.log")
      const a = yield* fileLog(file, { maxBytes: 4000, keep: 50 })
      const b = yield* fileLog(file, { maxBytes: 4000, keep: 50 })
      for (let n = 0; n < 300; n++) yield* (n % 2 === 0 ? a : b).append(entry(n))
      const seen = (yield* a.read).map((e) => e.bytes!).sort((x, y) => x - y)
      assert.deepStrictEqual(
        seen,
        Array.from({ length: 300 }, (_, n) => n)
      )
      assert.isAbove(fs.readdirSync(dir).length, 2, "it did rotate")
    })
  )

  it.scopedLive("the state directory removed while running: it is made again and the line lands", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = path.join(dir, "state", "audit.log")
      const log = yield* fileLog(file, { maxBytes: 400 })
      yield* log.append(entry(1))
      fs.rmSync(path.join(dir, "state"), { recursive: true })
      // The next line is due to rotate, so the writer looks at the path first.
      yield* log.append(entry(2, { caller: "x".repeat(400) }))
      assert.deepStrictEqual(
        (yield* log.read).map((e) => e.bytes),
        [2]
      )
      assert.strictEqual(fs.statSync(path.join(dir, "state")).mode & 0o777, 0o700)
    })
  )

  it.scopedLive("a process SIGKILLed right after its appends returned lost none of them", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = path.join(dir, "audit.log")
      const outfile = path.join(dir, "crash.mjs")
      yield* Effect.promise(() =>
        build({
          entryPoints: [path.join(import.meta.dirname, "fixtures", "auditCrashMain.ts")],
          outfile,
          bundle: true,
          format: "esm",
          platform: "node",
          target: "node20",
          banner: {
            js: 'import { createRequire } from "node:module"; const require = createRequire(import.meta.url);'
          },
          logLevel: "warning"
        })
      )
      const signal = yield* Effect.async<NodeJS.Signals | null>((resume) => {
        const child = ChildProcess.spawn(process.execPath, [outfile, file, "300"], { stdio: "inherit" })
        child.on("exit", (_code, signal) => resume(Effect.succeed(signal)))
      })
      assert.strictEqual(signal, "SIGKILL")
      const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n")
      assert.deepStrictEqual(
        lines.map((line) => Schema.decodeUnknownSync(AuditLog.EntryLine)(line).bytes),
        Array.from({ length: 300 }, (_, n) => n)
      )
    })
  )
})

const safeReadlink = (link: string): string | undefined => {
  try {
    return fs.readlinkSync(link)
  } catch {
    return undefined
  }
}
