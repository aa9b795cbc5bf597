/**
 * The contract every `RelayClient` layer passes (in-process and gRPC alike), run against a small world: workspace
 * A with machines `web-1`, `web-2` and `db-1` online and `old-1` registered but offline, and workspace B with
 * `b-box`. Agents run real commands on this host.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ExecEvent, RelayClient } from "../RelayClient.js"

export interface World {
  readonly a: RelayClient["Type"]
  readonly b: RelayClient["Type"]
  /** A client whose key the relay does not know. */
  readonly stranger: RelayClient["Type"]
  readonly workspaceA: string
  readonly workspaceB: string
}

export type WorldFactory = () => Effect.Effect<World, unknown, Scope.Scope>

type Exit = Extract<ExecEvent, { _tag: "Exit" }>

const collect = (events: Stream.Stream<ExecEvent, unknown>) =>
  Effect.gen(function* () {
    const all = Chunk.toReadonlyArray(yield* Stream.runCollect(events))
    const text = (tag: "Stdout" | "Stderr") =>
      Buffer.concat(all.filter((e) => e._tag === tag).map((e) => (e as { data: Uint8Array }).data)).toString("utf8")
    const exit = all.find((e): e is Exit => e._tag === "Exit")
    return { all, stdout: text("Stdout"), stderr: text("Stderr"), exit }
  })

export const relayClientContract = (label: string, world: WorldFactory) =>
  describe(`RelayClient contract: ${label}`, () => {
    it.scopedLive("whoami names the key's workspace", () =>
      Effect.gen(function* () {
        const w = yield* world()
        const me = yield* w.a.whoami
        assert.strictEqual(me.workspaceName, w.workspaceA)
        assert.strictEqual(me.kind, "key")
      })
    )

    it.scopedLive("a workspace lists its own machines only, with online state", () =>
      Effect.gen(function* () {
        const w = yield* world()
        const a = yield* w.a.listMachines()
        assert.deepStrictEqual(a.machines.map((m) => m.hostname).sort(), ["db-1", "old-1", "web-1", "web-2"])
        assert.isFalse(a.machines.find((m) => m.hostname === "old-1")!.online)
        assert.isTrue(a.machines.find((m) => m.hostname === "web-1")!.online)
        const online = yield* w.a.listMachines({ onlineOnly: true })
        assert.deepStrictEqual(online.machines.map((m) => m.hostname).sort(), ["db-1", "web-1", "web-2"])
        const b = yield* w.b.listMachines()
        assert.deepStrictEqual(
          b.machines.map((m) => m.hostname),
          ["b-box"]
        )
      })
    )

    it.scopedLive("names resolve by id, hostname (any case), name and unique part; ambiguity lists candidates", () =>
      Effect.gen(function* () {
        const w = yield* world()
        const db = yield* w.a.resolveMachine("DB-1")
        assert.strictEqual(db.hostname, "db-1")
        assert.strictEqual((yield* w.a.resolveMachine(db.id)).hostname, "db-1")
        assert.strictEqual((yield* w.a.resolveMachine("db")).hostname, "db-1")
        const ambiguous = yield* Effect.flip(w.a.resolveMachine("web"))
        assert.strictEqual(ambiguous._tag, "MachineError")
        if (ambiguous._tag === "MachineError") {
          assert.strictEqual(ambiguous.reason, "Ambiguous")
          assert.deepStrictEqual(ambiguous.candidates.map((c) => c.hostname).sort(), ["web-1", "web-2"])
          assert.include(ambiguous.message, "web-1")
        }
        const missing = yield* Effect.flip(w.a.resolveMachine("nope"))
        assert.strictEqual(missing._tag === "MachineError" && missing.reason, "NotFound")
      })
    )

    it.scopedLive("exec keeps stdout and stderr apart and passes the exit code through", () =>
      Effect.gen(function* () {
        const w = yield* world()
        const r = yield* collect(w.a.exec({ machine: "db-1", argv: ["sh", "-c", "echo out; echo err >&2; exit 3"] }))
        assert.strictEqual(r.all[0]?._tag, "Started")
        assert.strictEqual(r.stdout, "out\n")
        assert.strictEqual(r.stderr, "err\n")
        assert.strictEqual(r.exit?.exitCode, 3)
        assert.strictEqual(r.all[r.all.length - 1]?._tag, "Exit")
      })
    )

    it.scopedLive("exec forwards stdin and closes it at its end", () =>
      Effect.gen(function* () {
        const w = yield* world()
        const input = Stream.make(new TextEncoder().encode("hello "), new TextEncoder().encode("world\n"))
        const r = yield* collect(w.a.exec({ machine: "web-1", argv: ["cat"] }, input))
        assert.strictEqual(r.stdout, "hello world\n")
        assert.strictEqual(r.exit?.exitCode, 0)
        const none = yield* collect(w.a.exec({ machine: "web-1", argv: ["cat"] }))
        assert.strictEqual(none.stdout, "")
        assert.strictEqual(none.exit?.exitCode, 0)
      })
    )

    it.scopedLive("exec moves large output intact", () =>
      Effect.gen(function* () {
        const w = yield* world()
        let bytes = 0
        const events = w.a.exec({ machine: "web-2", argv: ["head", "-c", "20000000", "/dev/zero"] })
        yield* Stream.runForEach(events, (e) =>
          Effect.sync(() => {
            if (e._tag === "Stdout") bytes += e.data.byteLength
          })
        )
        assert.strictEqual(bytes, 20_000_000)
      })
    )

    it.scopedLive("a timeout kills the command and says so; a missing command is 127 with a reason", () =>
      Effect.gen(function* () {
        const w = yield* world()
        const slow = yield* collect(w.a.exec({ machine: "db-1", argv: ["sleep", "20"], timeoutMs: 300 }))
        assert.isTrue(slow.exit?.timedOut)
        const missing = yield* collect(w.a.exec({ machine: "db-1", argv: ["no-such-command-xyz"] }))
        assert.strictEqual(missing.exit?.exitCode, 127)
        assert.include(missing.exit?.error ?? "", "no-such-command-xyz")
      })
    )

    it.scopedLive("stopping to read ends the remote process", () =>
      Effect.gen(function* () {
        const w = yield* world()
        // Run it in its own scope, read the pid, then close the scope (the client goes away).
        const pid = yield* Effect.scoped(
          Effect.gen(function* () {
            const p = yield* Stream.toPull(
              w.a
                .exec({ machine: "db-1", argv: ["sh", "-c", "echo $$; exec sleep 30"] })
                .pipe(Stream.filter((e) => e._tag === "Stdout"))
            )
            let chunk = yield* p
            while (Chunk.isEmpty(chunk)) chunk = yield* p
            const e = Chunk.unsafeHead(chunk) as { data: Uint8Array }
            return Number(Buffer.from(e.data).toString("utf8").trim())
          })
        )
        assert.isAbove(pid, 0)
        const alive = () => {
          try {
            process.kill(pid, 0)
            return true
          } catch {
            return false
          }
        }
        yield* Effect.sync(alive).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (a) => !a }),
          Effect.timeout("5 seconds"),
          Effect.ignore
        )
        assert.isFalse(alive(), "the remote process outlived its client")
      })
    )

    it.scopedLive("a session whose reader stalls never holds up another session on the same machine", () =>
      Effect.gen(function* () {
        const w = yield* world()
        const stalled = yield* Stream.toPull(
          w.a.exec({ machine: "web-2", argv: ["head", "-c", "100000000", "/dev/zero"] })
        )
        yield* stalled // Started, and maybe the first chunk: then nobody reads any more.
        const quick = yield* collect(w.a.exec({ machine: "web-2", argv: ["echo", "still here"] })).pipe(
          Effect.timeout("10 seconds")
        )
        assert.strictEqual(quick.stdout, "still here\n")
      })
    )

    it.scopedLive("one workspace can neither see nor reach another's machines", () =>
      Effect.gen(function* () {
        const w = yield* world()
        const fromA = yield* Effect.flip(w.a.resolveMachine("b-box"))
        assert.strictEqual(fromA._tag === "MachineError" && fromA.reason, "NotFound")
        const execA = yield* Effect.flip(collect(w.a.exec({ machine: "b-box", argv: ["true"] })))
        assert.strictEqual((execA as { _tag: string })._tag, "MachineError")
        const bList = yield* w.b.listMachines()
        const aMachine = yield* w.a.resolveMachine("db-1")
        const byId = yield* Effect.flip(w.b.resolveMachine(aMachine.id))
        assert.strictEqual(byId._tag === "MachineError" && byId.reason, "NotFound")
        assert.isFalse(bList.machines.some((m) => m.id === aMachine.id))
      })
    )

    it.scopedLive("an offline machine is refused with its heartbeat age", () =>
      Effect.gen(function* () {
        const w = yield* world()
        const error = yield* Effect.flip(collect(w.a.exec({ machine: "old-1", argv: ["true"] })))
        assert.strictEqual((error as { _tag: string })._tag, "MachineError")
        assert.match((error as Error).message, /machine "old-1" is offline \(last heartbeat \d+s ago\)/)
      })
    )

    it.scopedLive("an unknown key is refused on every call", () =>
      Effect.gen(function* () {
        const w = yield* world()
        for (const call of [
          w.stranger.whoami,
          w.stranger.listMachines(),
          w.stranger.resolveMachine("db-1"),
          collect(w.stranger.exec({ machine: "db-1", argv: ["true"] }))
        ]) {
          const error = yield* Effect.flip(call as Effect.Effect<unknown, unknown>)
          assert.strictEqual((error as { _tag: string })._tag, "AccessError")
          assert.strictEqual((error as { reason: string }).reason, "Unauthenticated")
        }
      })
    )
  })
