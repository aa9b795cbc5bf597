/**
 * An unanswered `ask` is a deny after 60 s, through the whole path and on the TestClock rather than by waiting a
 * minute: the real relay core and share service on the memory store, a real agent engine with the machine's gate
 * attached in-process, a guest's exec and a guest's new shell. While held, the relay lists the request for the
 * workspace and the guest reads that it waits; at 59 s nothing has changed; at 60 s the guest reads the refusal, the
 * relay no longer lists it, the machine's audit log has the ask and the deny, and the link's audit `denied by gate`.
 */
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import { assert, describe, it } from "@effect/vitest"
import * as AuditLog from "@cmdop/agent/AuditLog"
import * as Gate from "@cmdop/agent/Gate"
import type { AttachEvent, ExecEvent } from "@cmdop/domain/RelayClient"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import { parsePolicy } from "@cmdop/gate/PolicyFile"
import * as PolicyStore from "@cmdop/gate/PolicyStore"
import { warmUp } from "@cmdop/gate/Reader"
import * as RelayClientInProcess from "@cmdop/relay/RelayClientInProcess"
import { eventually } from "@cmdop/test-helpers/Eventually"
import * as InProcessAgent from "@cmdop/testkit/InProcessAgent"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { memoryRelay } from "./memoryRelay.js"

const POLICY = `default: {key: allow, user: allow, guest: deny}
rules:
  - {action: ask, caller: guest, command: "printf *"}
  - {action: ask, caller: guest, mode: shell}
`

/** Polls on the real clock (the test's clock stands still unless the test moves it). */
const waitFor = <A, E>(what: string, probe: Effect.Effect<A | undefined, E>) =>
  eventually(what, probe, { timeout: "20 seconds", interval: "20 millis" }).pipe(Effect.withClock(Clock.make()))

describe("an unanswered ask through relay and agent (TestClock)", () => {
  it.scoped("is denied after 60 s: for an exec and for a new shell", () =>
    Effect.gen(function* () {
      yield* warmUp
      const { context, store } = yield* memoryRelay({ server: "test", guestSweep: "1 hour" })
      const key = Redacted.value((yield* store.createWorkspace(WorkspaceName.make("w"))).apiKey)
      const auditLog = yield* AuditLog.makeMemory
      const gate = yield* Gate.make({ auditLog }).pipe(
        Effect.provide(PolicyStore.layerFixed(Either.getOrThrow(parsePolicy(POLICY, "/etc/cmdop/permissions.yaml"))))
      )
      yield* InProcessAgent.attach(key, InProcessAgent.identity({ hostname: "prod-1" }), {
        hostname: "prod-1",
        gate: { gate, machine: "prod-1" }
      }).pipe(Effect.provide(context), Effect.provide(ProcessRunner.layer))
      const client = (credential: string) =>
        Effect.provide(RelayClientInProcess.make(Redacted.make(credential)), context)
      const owner = yield* client(key)
      const minted = yield* owner.createShare("prod-1", 3600)
      const guest = yield* client(minted.token)
      const pendingAtRelay = (mode: string) =>
        Effect.map(owner.listApprovals, (all) => all.filter((a) => a.approval.mode === mode))

      // An exec: held, listed at the relay, the guest told it waits.
      const execEvents: Array<ExecEvent> = []
      yield* guest.exec({ machine: "prod-1", argv: ["printf", "x"] }).pipe(
        Stream.runForEach((e) => Effect.sync(() => void execEvents.push(e))),
        Effect.forkScoped
      )
      const stderr = () => execEvents.map((e) => (e._tag === "Stderr" ? new TextDecoder().decode(e.data) : "")).join("")
      yield* waitFor(
        "the held exec at the relay",
        Effect.map(pendingAtRelay("exec"), (l) => (l.length === 1 ? l : undefined))
      )
      yield* waitFor(
        "the waiting line",
        Effect.sync(() => (stderr().includes("waiting") ? true : undefined))
      )
      assert.strictEqual(stderr(), "waiting for approval on prod-1…\n")

      // A new shell: Attached, then the notice.
      const shellEvents: Array<AttachEvent> = []
      const input = yield* Queue.unbounded<never>()
      yield* guest
        .attach({ machine: "prod-1", cols: 80, rows: 24, command: ["/bin/sh"] }, Stream.fromQueue(input))
        .pipe(
          Stream.runForEach((e) => Effect.sync(() => void shellEvents.push(e))),
          Effect.forkScoped
        )
      yield* waitFor(
        "the shell's notice",
        Effect.sync(() => (shellEvents.some((e) => e._tag === "Notice") ? true : undefined))
      )
      assert.deepStrictEqual(
        shellEvents.map((e) => (e._tag === "Notice" ? e.text : e._tag)),
        ["Attached", "waiting for approval on prod-1…"]
      )

      // 59 s: both still held.
      for (let s = 0; s < 59; s++) yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* pendingAtRelay("exec")).length, 1)
      assert.strictEqual((yield* pendingAtRelay("shell")).length, 1)
      assert.isUndefined(execEvents.find((e) => e._tag === "Exit"))
      assert.isUndefined(shellEvents.find((e) => e._tag === "Ended"))

      // 60 s: both refused, in the words a guest reads; nothing is pending any more.
      yield* TestClock.adjust("1 second")
      const exit = yield* waitFor(
        "the exec's refusal",
        Effect.sync(() => execEvents.find((e) => e._tag === "Exit"))
      )
      assert.strictEqual(exit._tag === "Exit" && exit.exitCode, 126)
      assert.strictEqual(
        exit._tag === "Exit" && exit.error,
        "refused by the machine's permissions: no approval came in time"
      )
      const ended = yield* waitFor(
        "the shell's refusal",
        Effect.sync(() => shellEvents.find((e) => e._tag === "Ended"))
      )
      assert.include(JSON.stringify(ended), "refused by the machine's permissions: no approval came in time")
      yield* waitFor(
        "nothing pending at the relay",
        Effect.map(owner.listApprovals, (l) => (l.length === 0 ? true : undefined))
      )

      // Both expire at the same instant: their deny lines may come in either order.
      const gateLines = (yield* auditLog.read).map((e) => `${e.mode} ${e.decision} by ${e.approver ?? "nobody"}`)
      assert.deepStrictEqual(gateLines.slice(0, 2), ["exec ask by nobody", "shell ask by nobody"])
      assert.sameMembers(gateLines.slice(2), ["exec deny by nobody", "shell deny by nobody"])
      const [link] = (yield* owner.listShares("prod-1")).links
      assert.isTrue(link!.events.some((e) => e.detail === "denied by gate"))
    })
  )
})
