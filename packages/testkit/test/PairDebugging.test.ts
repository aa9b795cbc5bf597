/**
 * Pair debugging, end to end: a real relay on loopback and one real agent daemon. The owner (workspace API key)
 * opens a PTY session and shares that one session (a share link scoped to it, an explicit act of the owner); the
 * guest joins the SAME session. Each types a command; both
 * viewers see both outputs (one output stream), and the machine's own audit.log attributes each input to the
 * principal who typed it: the owner's key prefix, and the guest as `share <link id>` with its share id.
 */
import { assert, describe, it } from "@effect/vitest"
import * as AuditLog from "@cmdop/agent/AuditLog"
import type { AttachEvent } from "@cmdop/domain/RelayClient"
import { AttachInput } from "@cmdop/domain/RelayClient"
import type { RelayClient } from "@cmdop/domain/RelayClient"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import * as LoopbackRelay from "@cmdop/testkit/LoopbackRelay"
import { eventuallySync } from "@cmdop/test-helpers/Eventually"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as path from "node:path"

/** Polls `probe` until it returns a value; dies after `millis` with what it waited for. */
const waitFor = <A>(what: string, probe: () => A | undefined, millis = 10_000): Effect.Effect<A> =>
  eventuallySync(what, probe, { timeout: Duration.millis(millis) }).pipe(Effect.orDieWith((e) => new Error(e.message)))

interface Viewer {
  readonly events: Array<AttachEvent>
  readonly type: (text: string) => Effect.Effect<void>
  readonly text: () => string
}

/** Attaches in the background, collecting every event; `type` sends keystrokes. */
const view = (client: RelayClient["Type"], request: Parameters<RelayClient["Type"]["attach"]>[0]) =>
  Effect.gen(function* () {
    const input = yield* Queue.unbounded<AttachInput>()
    const events: Array<AttachEvent> = []
    yield* client.attach(request, Stream.fromQueue(input)).pipe(
      Stream.runForEach((event) => Effect.sync(() => events.push(event))),
      Effect.forkScoped
    )
    const viewer: Viewer = {
      events,
      type: (text) => Queue.offer(input, AttachInput.Data({ data: Buffer.from(text) })).pipe(Effect.asVoid),
      text: () =>
        Buffer.concat(events.flatMap((e) => (e._tag === "Output" ? [Buffer.from(e.data)] : []))).toString("latin1")
    }
    return viewer
  })

/** A command's own output line (not the terminal's echo of the command typed). */
const printed = (word: string) => new RegExp(`(?<!echo )${word}\\r\\n`)

const readAudit = (file: string): ReadonlyArray<AuditLog.Entry> =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => Schema.decodeUnknownSync(AuditLog.EntryLine)(line))
    : []

describe("pair debugging", () => {
  it.scopedLive("owner and guest share one PTY session: both see all output; the audit log names who typed what", () =>
    Effect.gen(function* () {
      const relay = yield* LoopbackRelay.make()
      const key = yield* relay.createWorkspace("pair")
      // Joining a live session is the gate's call: this machine's policy lets guests join.
      const agent = yield* relay.startAgent(key, "dev-box", {
        permissions: "rules:\n  - {action: allow, caller: guest, note: the owner pairs with a guest}\n"
      })
      yield* relay.waitOnline(key, ["dev-box"])

      const owner = yield* relay.client(key)
      const ownerWho = yield* owner.whoami
      const first = yield* view(owner, { machine: "dev-box", cols: 80, rows: 24, command: ["/bin/sh"] })
      const attached = yield* waitFor("the owner's Attached", () => {
        const head = first.events[0]
        return head?._tag === "Attached" ? head : undefined
      })
      assert.isTrue(attached.created)
      const minted = yield* owner.createShare("dev-box", 3600, { sessionId: attached.sessionId })
      assert.strictEqual(minted.link.sessionId, attached.sessionId)
      const guest = yield* relay.client(minted.token)
      const guestWho = yield* guest.whoami
      assert.strictEqual(guestWho.kind, "guest")
      const second = yield* view(guest, { machine: "dev-box", sessionId: attached.sessionId, cols: 80, rows: 24 })
      const joined = yield* waitFor("the guest's Attached", () => {
        const head = second.events[0]
        return head?._tag === "Attached" ? head : undefined
      })
      assert.strictEqual(joined.sessionId, attached.sessionId)
      assert.isFalse(joined.created)

      yield* first.type("echo from-owner\n")
      yield* waitFor("from-owner on both screens", () =>
        printed("from-owner").test(first.text()) && printed("from-owner").test(second.text()) ? true : undefined
      )
      yield* second.type("echo from-guest\n")
      yield* waitFor("from-guest on both screens", () =>
        printed("from-guest").test(first.text()) && printed("from-guest").test(second.text()) ? true : undefined
      )
      // One output stream: the two viewers' screens agree byte for byte (both started at offset 0).
      assert.strictEqual(joined.offset, 0)
      yield* waitFor("the same bytes on both screens", () => (first.text() === second.text() ? true : undefined))

      // The agent's own audit trail (CmdopPaths under the daemon's HOME; input lines come within ~1 s).
      const file = path.join(CmdopPaths.forHome(agent.home).stateDir, AuditLog.FILE_NAME)
      assert.strictEqual(file, path.join(agent.home, ".local", "state", "cmdop", "audit.log"))
      const session = attached.sessionId
      const inputsOf = (entries: ReadonlyArray<AuditLog.Entry>, caller: string) =>
        entries.filter((e) => e.session_id === session && e.event === "input" && e.caller === caller)
      const bytesOf = (entries: ReadonlyArray<AuditLog.Entry>) => entries.reduce((n, e) => n + (e.bytes ?? 0), 0)
      const typed = "echo from-owner\n".length
      const entries = yield* waitFor("both principals' input in audit.log", () => {
        const all = readAudit(file)
        return bytesOf(inputsOf(all, ownerWho.principal)) >= typed &&
          bytesOf(inputsOf(all, guestWho.principal)) >= typed
          ? all
          : undefined
      })

      const opens = entries.filter((e) => e.session_id === session && e.event === "session_open")
      assert.strictEqual(opens.length, 1)
      assert.deepInclude(opens[0], {
        decision: "allow",
        caller: ownerWho.principal,
        caller_kind: "key",
        share_id: null,
        mode: "pty",
        command_digest: AuditLog.digest("/bin/sh")
      })
      const ownerInputs = inputsOf(entries, ownerWho.principal)
      const guestInputs = inputsOf(entries, `share ${minted.link.id}`)
      assert.strictEqual(guestWho.principal, `share ${minted.link.id}`)
      assert.strictEqual(bytesOf(ownerInputs), typed)
      assert.strictEqual(bytesOf(guestInputs), "echo from-guest\n".length)
      for (const e of ownerInputs) assert.deepInclude(e, { caller_kind: "key", share_id: null, mode: "pty" })
      for (const e of guestInputs)
        assert.deepInclude(e, { caller_kind: "guest", share_id: minted.link.id, mode: "pty" })
      // Coalesced: one line per caller per burst, not one per keystroke or per message.
      assert.isAtMost(ownerInputs.length, 2)
      assert.isAtMost(guestInputs.length, 2)
      // The owner's key itself never reaches the log; only its non-secret prefix.
      assert.notInclude(fs.readFileSync(file, "utf8"), key)
      assert.notInclude(fs.readFileSync(file, "utf8"), minted.token)
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)

      // The shell exits: both viewers see the end, and the log records it with the code.
      yield* second.type("exit 5\n")
      for (const viewer of [first, second])
        yield* waitFor("the end on both screens", () => {
          const last = viewer.events.at(-1)
          return last?._tag === "Ended" ? last : undefined
        })
      const end = yield* waitFor("session_end in audit.log", () =>
        readAudit(file).find((e) => e.session_id === session && e.event === "session_end")
      )
      assert.deepInclude(end, { caller: ownerWho.principal, exit_code: 5, reason: "exit", mode: "pty" })
    })
  )
})
