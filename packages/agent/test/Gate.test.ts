/**
 * The gate in the session engine: a queue plays the relay (domain agent-link messages), the real process runner
 * runs what is admitted, the policy is parsed from YAML, the audit log is in memory. An unanswered `ask` is denied
 * after 60 s on the TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import * as AgentEngine from "@cmdop/agent/AgentEngine"
import * as AuditLog from "@cmdop/agent/AuditLog"
import * as Gate from "@cmdop/agent/Gate"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import type { AgentMessage, Caller, RelayMessage, SessionExit } from "@cmdop/domain/AgentLink"
import { parsePolicy } from "@cmdop/gate/PolicyFile"
import * as PolicyStore from "@cmdop/gate/PolicyStore"
import { warmUp } from "@cmdop/gate/Reader"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as TestClock from "effect/TestClock"
import { eventually } from "./helpers.js"

const POLICY = `default: {key: allow, user: allow, guest: deny}
rules:
  - action: allow
    caller: guest
    mode: exec
    command: ["echo *", "cat"]
  - action: ask
    caller: guest
    command: ["printf *", "head *"]
  - action: deny
    user: "*@contractor.example"
  - action: ask
    user: held@example.com
`

const guest: Caller = { kind: "guest", principal: "shr_1", shareId: "shr_1" }
/** A signed-in user the file asks about for everything: shells and attaches too. */
const held: Caller = { kind: "user", principal: "held@example.com" }

const harness = Effect.gen(function* () {
  yield* warmUp
  const policy = Either.getOrThrow(parsePolicy(POLICY, "/etc/cmdop/permissions.yaml"))
  const auditLog = yield* AuditLog.makeMemory
  const gate = yield* Gate.make({ auditLog }).pipe(Effect.provide(PolicyStore.layerFixed(policy)))
  const inbox = yield* Queue.unbounded<RelayMessage>()
  const sent: Array<AgentMessage> = []
  const runner = yield* ProcessRunner.make({ killGrace: "300 millis" })
  yield* Effect.forkScoped(
    AgentEngine.serve(
      { incoming: Stream.fromQueue(inbox), send: (m) => Effect.sync(() => void sent.push(m)) },
      {
        window: 1 << 20,
        heartbeatInterval: 0,
        relaySilenceTimeout: Duration.infinity,
        auditLog,
        gate: { gate, machine: "box" }
      }
    ).pipe(Effect.provideService(ProcessRunner.ProcessRunner, runner))
  )
  const exec = (sessionId: string, caller: Caller, argv: ReadonlyArray<string>, stdin = false) =>
    Queue.offer(inbox, {
      _tag: "SessionOpen",
      sessionId,
      caller,
      spec: { _tag: "Exec", argv, shell: false, timeoutMs: 0, stdin, env: {} }
    })
  const exitOf = (sessionId: string) =>
    eventually(
      `the exit of ${sessionId}`,
      () => sent.find((m): m is SessionExit => m._tag === "SessionExit" && m.sessionId === sessionId),
      "20 seconds"
    )
  const stdout = (sessionId: string) =>
    sent
      .flatMap((m) => (m._tag === "SessionOutput" && m.sessionId === sessionId ? [m] : []))
      .map((m) => `${m.pipe}:${new TextDecoder().decode(m.data)}`)
      .join("")
  return { gate, auditLog, inbox, sent, exec, exitOf, stdout }
})

describe("Gate in the engine", () => {
  it.scopedLive("allowed exec runs; denied exec never runs and the guest reads only the outcome", () =>
    Effect.gen(function* () {
      const h = yield* harness
      yield* h.exec("s1", guest, ["echo", "hi"])
      assert.strictEqual((yield* h.exitOf("s1")).exitCode, 0)
      assert.strictEqual(h.stdout("s1"), "stdout:hi\n")

      yield* h.exec("s2", guest, ["cat", "/etc/shadow"])
      const refused = yield* h.exitOf("s2")
      assert.strictEqual(refused.exitCode, 126)
      assert.strictEqual(refused.error, "refused by the machine's permissions: not allowed for this link")
      assert.strictEqual(h.stdout("s2"), "")

      yield* h.exec("s3", guest, ["sh", "-c", "echo ok; id"])
      assert.strictEqual(
        (yield* h.exitOf("s3")).error,
        "refused by the machine's permissions: not allowed for this link"
      )

      // A user the file denies reads the reason and the rule's location.
      yield* h.exec("s4", { kind: "user", principal: "bob@contractor.example" }, ["echo", "x"])
      const user = yield* h.exitOf("s4")
      assert.strictEqual(
        user.error,
        "refused by the machine's permissions: echo x: deny by /etc/cmdop/permissions.yaml:10 (a rule without command)"
      )

      const lines = (yield* h.auditLog.read).filter((e) => e.event === "gate")
      assert.deepStrictEqual(
        lines.map((e) => [e.session_id, e.decision, e.rule, e.caller_kind, e.user ?? null]),
        [
          ["s1", "allow", "/etc/cmdop/permissions.yaml:3", "guest", null],
          ["s2", "deny", "default", "guest", null],
          ["s3", "deny", "default", "guest", null],
          ["s4", "deny", "/etc/cmdop/permissions.yaml:10", "user", "bob@contractor.example"]
        ]
      )
      assert.match(lines[0]!.command_digest ?? "", /^[0-9a-f]{64}$/)
      // The session's own open line follows its gate line; a refused session has none.
      const opens = (yield* h.auditLog.read).filter((e) => e.event === "session_open").map((e) => e.session_id)
      assert.deepStrictEqual(opens, ["s1"])
    })
  )

  it.scopedLive("a shell session is decided as a whole", () =>
    Effect.gen(function* () {
      const h = yield* harness
      yield* Queue.offer(h.inbox, {
        _tag: "SessionOpen",
        sessionId: "p1",
        caller: guest,
        spec: { _tag: "Pty", cols: 80, rows: 24, term: "", command: [] }
      })
      assert.strictEqual(
        (yield* h.exitOf("p1")).error,
        "refused by the machine's permissions: not allowed for this link"
      )
    })
  )

  it.scopedLive("an attach check runs nothing: exit 0 when the gate admits it, a refusal when not", () =>
    Effect.gen(function* () {
      const h = yield* harness
      const attach = (sessionId: string, caller: Caller) =>
        Queue.offer(h.inbox, { _tag: "SessionOpen", sessionId, caller, spec: { _tag: "Attach", sessionId: "pty-1" } })
      yield* attach("k1", { kind: "key", principal: "cmd_abc" })
      const admitted = yield* h.exitOf("k1")
      assert.strictEqual(admitted.exitCode, 0)
      assert.isUndefined(admitted.error)
      yield* attach("g1", guest)
      const refused = yield* h.exitOf("g1")
      assert.strictEqual(refused.exitCode, 126)
      assert.isTrue(refused.gateDenied)
      assert.strictEqual(refused.error, "refused by the machine's permissions: not allowed for this link")
      const modes = (yield* h.auditLog.read).filter((e) => e.event === "gate").map((e) => [e.mode, e.decision])
      assert.deepStrictEqual(modes, [
        ["attach", "allow"],
        ["attach", "deny"]
      ])
    })
  )

  it.scopedLive("an ask holds the exec (stdin kept) until approved; the caller is told it waits", () =>
    Effect.gen(function* () {
      const h = yield* harness
      yield* h.exec("a1", guest, ["printf", "approved"])
      const pending = yield* eventually("a pending approval", () => {
        const list = Effect.runSync(SubscriptionRef.get(h.gate.approvals.pending))
        return list[0]
      })
      assert.strictEqual(pending.session_id, "a1")
      assert.strictEqual(pending.command, '["printf","approved"]')
      assert.strictEqual(h.stdout("a1"), "stderr:waiting for approval on box…\n")
      assert.isUndefined(h.sent.find((m) => m._tag === "SessionExit"))
      assert.isTrue(yield* h.gate.approvals.answer(pending.id, { approve: true, forLink: false, approver: "ops" }))
      assert.strictEqual((yield* h.exitOf("a1")).exitCode, 0)
      assert.strictEqual(h.stdout("a1"), "stderr:waiting for approval on box…\nstdout:approved")
      const gateLines = (yield* h.auditLog.read).filter((e) => e.event === "gate")
      assert.deepStrictEqual(
        gateLines.map((e) => [e.decision, e.approver]),
        [
          ["ask", null],
          ["allow", "ops"]
        ]
      )
    })
  )

  it.scopedLive("stdin sent while a session is held reaches it in order once it starts", () =>
    Effect.gen(function* () {
      const h = yield* harness
      yield* h.exec("c1", guest, ["head", "-c", "11"], true)
      const pending = yield* eventually(
        "c1 pending",
        () => Effect.runSync(SubscriptionRef.get(h.gate.approvals.pending))[0]
      )
      const bytes = (text: string) => new TextEncoder().encode(text)
      yield* Queue.offer(h.inbox, { _tag: "SessionInput", sessionId: "c1", data: bytes("hello "), eof: false })
      yield* Queue.offer(h.inbox, { _tag: "SessionInput", sessionId: "c1", data: bytes("world"), eof: true })
      yield* h.gate.approvals.answer(pending.id, { approve: true, forLink: false, approver: "ops" })
      assert.strictEqual((yield* h.exitOf("c1")).exitCode, 0)
      assert.strictEqual(h.stdout("c1"), "stderr:waiting for approval on box…\nstdout:hello world")
    })
  )

  it.scopedLive("a held session the relay closes (its caller gone) is settled at once and never runs", () =>
    Effect.gen(function* () {
      const h = yield* harness
      const pendingNow = () => Effect.runSync(SubscriptionRef.get(h.gate.approvals.pending))
      const closeWhileHeld = (sessionId: string) =>
        Effect.gen(function* () {
          const pending = yield* eventually(`${sessionId} pending`, () =>
            pendingNow().find((p) => p.session_id === sessionId)
          )
          yield* Queue.offer(h.inbox, { _tag: "SessionClose", sessionId, reason: "client went away" })
          const exit = yield* h.exitOf(sessionId)
          // No error: the relay knows why it closed it; 126, the session never ran.
          assert.deepStrictEqual([exit.exitCode, exit.error, exit.gateDenied], [126, undefined, undefined])
          yield* eventually(`${sessionId} settled`, () =>
            h.sent.some((m) => m._tag === "ApprovalSettled" && m.approvalId === pending.id) ? true : undefined
          )
          assert.isUndefined(pendingNow().find((p) => p.session_id === sessionId))
          // An answer that comes afterwards finds nothing to answer.
          assert.isFalse(yield* h.gate.approvals.answer(pending.id, { approve: true, forLink: false, approver: "ops" }))
          return pending
        })

      // An exec with stdin (kept while held), a new shell, an attach check.
      yield* h.exec("x1", guest, ["head", "-c", "5"], true)
      yield* Queue.offer(h.inbox, {
        _tag: "SessionInput",
        sessionId: "x1",
        data: new TextEncoder().encode("hello"),
        eof: true
      })
      yield* closeWhileHeld("x1")
      assert.strictEqual(h.stdout("x1"), "stderr:waiting for approval on box…\n")
      yield* Queue.offer(h.inbox, {
        _tag: "SessionOpen",
        sessionId: "x2",
        caller: held,
        spec: { _tag: "Pty", cols: 80, rows: 24, term: "", command: [] }
      })
      yield* closeWhileHeld("x2")
      yield* Queue.offer(h.inbox, {
        _tag: "SessionOpen",
        sessionId: "x3",
        caller: held,
        spec: { _tag: "Attach", sessionId: "pty-1" }
      })
      yield* closeWhileHeld("x3")

      // Nothing ran: the gate lines are the asks alone, and no session has a session_open line.
      const lines = yield* h.auditLog.read
      assert.deepStrictEqual(
        lines.filter((e) => e.event === "gate").map((e) => [e.session_id, e.mode, e.decision]),
        [
          ["x1", "exec", "ask"],
          ["x2", "shell", "ask"],
          ["x3", "attach", "ask"]
        ]
      )
      assert.isUndefined(lines.find((e) => e.event === "session_open"))
      assert.deepStrictEqual(
        h.sent.filter((m) => m._tag === "SessionExit").map((m) => m.sessionId),
        ["x1", "x2", "x3"]
      )

      // A close after the decision reaches the session as before: approved, the command runs and is closed.
      yield* h.exec("x4", guest, ["head", "-c", "1"], true)
      const pending = yield* eventually("x4 pending", () => pendingNow()[0])
      yield* h.gate.approvals.answer(pending.id, { approve: true, forLink: false, approver: "ops" })
      yield* eventually("x4 running", () =>
        Effect.runSync(h.auditLog.read).some((e) => e.event === "session_open" && e.session_id === "x4")
          ? true
          : undefined
      )
      yield* Queue.offer(h.inbox, { _tag: "SessionClose", sessionId: "x4", reason: "client went away" })
      const closed = yield* h.exitOf("x4")
      assert.isUndefined(closed.error)
      assert.notStrictEqual(closed.exitCode, 126)
    })
  )

  it.scopedLive("an interrupt while held withdraws the request: nothing runs, the caller reads why", () =>
    Effect.gen(function* () {
      const h = yield* harness
      const bytes = (text: string) => new TextEncoder().encode(text)
      const pendingOf = (sessionId: string) =>
        eventually(`${sessionId} pending`, () =>
          Effect.runSync(SubscriptionRef.get(h.gate.approvals.pending)).find((p) => p.session_id === sessionId)
        )
      const withdrawn = (sessionId: string, signal: string, exitCode: number, how: string) =>
        Effect.gen(function* () {
          const exit = yield* h.exitOf(sessionId)
          assert.deepStrictEqual(
            [exit.exitCode, exit.signal, exit.error, exit.gateDenied],
            [exitCode, signal, `withdrew the request waiting for approval on box (${how}); nothing ran`, undefined]
          )
        })
      const settledAtOnce = (sessionId: string, approvalId: string) =>
        Effect.gen(function* () {
          // By the time the exit is sent the request is no longer pending; the relay hears it is settled.
          assert.isUndefined(
            Effect.runSync(SubscriptionRef.get(h.gate.approvals.pending)).find((p) => p.session_id === sessionId)
          )
          yield* eventually(`${sessionId} settled`, () =>
            h.sent.some((m) => m._tag === "ApprovalSettled" && m.approvalId === approvalId) ? true : undefined
          )
          assert.isFalse(yield* h.gate.approvals.answer(approvalId, { approve: true, forLink: false, approver: "ops" }))
        })

      // SIGINT (Ctrl-C at connect exec); a signal that stops nothing (WINCH) waits for the start as before.
      yield* h.exec("w1", guest, ["printf", "x"])
      const w1 = yield* pendingOf("w1")
      yield* Queue.offer(h.inbox, { _tag: "SessionSignal", sessionId: "w1", signal: "WINCH" })
      yield* Queue.offer(h.inbox, { _tag: "SessionSignal", sessionId: "w1", signal: "INT" })
      yield* withdrawn("w1", "INT", 130, "SIGINT")
      yield* settledAtOnce("w1", w1.id)
      assert.strictEqual(h.stdout("w1"), "stderr:waiting for approval on box…\n")
      // SIGTERM (a supervisor stopping its client) too, with its own status.
      yield* h.exec("w2", guest, ["printf", "y"])
      const w2 = yield* pendingOf("w2")
      yield* Queue.offer(h.inbox, { _tag: "SessionSignal", sessionId: "w2", signal: "TERM" })
      yield* withdrawn("w2", "TERM", 143, "SIGTERM")
      yield* settledAtOnce("w2", w2.id)

      // A held shell: what is typed ahead is kept, until a Ctrl-C among it.
      yield* Queue.offer(h.inbox, {
        _tag: "SessionOpen",
        sessionId: "w3",
        caller: held,
        spec: { _tag: "Pty", cols: 80, rows: 24, term: "", command: [] }
      })
      const w3 = yield* pendingOf("w3")
      yield* Queue.offer(h.inbox, { _tag: "SessionInput", sessionId: "w3", data: bytes("ls\r"), eof: false })
      yield* Queue.offer(h.inbox, { _tag: "SessionInput", sessionId: "w3", data: bytes("rm x\x03"), eof: false })
      yield* withdrawn("w3", "INT", 130, "Ctrl-C")
      yield* settledAtOnce("w3", w3.id)

      // An exec's stdin is data, not keys: a 0x03 byte in it is kept for the command.
      yield* h.exec("w4", guest, ["head", "-c", "3"], true)
      const w4 = yield* pendingOf("w4")
      yield* Queue.offer(h.inbox, { _tag: "SessionInput", sessionId: "w4", data: bytes("a\x03b"), eof: true })
      yield* h.gate.approvals.answer(w4.id, { approve: true, forLink: false, approver: "ops" })
      assert.strictEqual((yield* h.exitOf("w4")).exitCode, 0)
      assert.strictEqual(h.stdout("w4"), "stderr:waiting for approval on box…\nstdout:a\x03b")

      // Once approved, SIGINT is the command's, as without a gate.
      yield* h.exec("w5", guest, ["head", "-c", "1"], true)
      const w5 = yield* pendingOf("w5")
      yield* h.gate.approvals.answer(w5.id, { approve: true, forLink: false, approver: "ops" })
      yield* eventually("w5 running", () =>
        Effect.runSync(h.auditLog.read).some((e) => e.event === "session_open" && e.session_id === "w5")
          ? true
          : undefined
      )
      yield* Queue.offer(h.inbox, { _tag: "SessionSignal", sessionId: "w5", signal: "INT" })
      const ran = yield* h.exitOf("w5")
      assert.deepStrictEqual([ran.exitCode, ran.signal, ran.error], [130, "INT", undefined])

      // Only the two approved sessions opened.
      const opens = (yield* h.auditLog.read).filter((e) => e.event === "session_open").map((e) => e.session_id)
      assert.deepStrictEqual(opens, ["w4", "w5"])
    })
  )

  it.scoped("no answer within 60 s is a deny (TestClock); approval for the link admits later asks", () =>
    Effect.gen(function* () {
      yield* warmUp
      const policy = Either.getOrThrow(parsePolicy(POLICY, "p.yaml"))
      const auditLog = yield* AuditLog.makeMemory
      const gate = yield* Gate.make({ auditLog }).pipe(Effect.provide(PolicyStore.layerFixed(policy)))
      const check = (sessionId: string, shareId: string) =>
        gate.check(
          {
            sessionId,
            caller: { kind: "guest", principal: shareId, shareId },
            mode: "exec",
            argv: ["printf", "x"]
          },
          () => Effect.void
        )
      const waiting = yield* Effect.fork(check("t1", "shr_1"))
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual((yield* SubscriptionRef.get(gate.approvals.pending)).length, 1)
      yield* TestClock.adjust("1 second")
      const verdict = yield* waiting.await
      assert.deepStrictEqual(verdict._tag === "Success" ? verdict.value : undefined, {
        allowed: false,
        message: "refused by the machine's permissions: no approval came in time"
      })
      assert.strictEqual((yield* SubscriptionRef.get(gate.approvals.pending)).length, 0)

      const first = yield* Effect.fork(check("t2", "shr_2"))
      yield* TestClock.adjust("1 second")
      const [pending] = yield* SubscriptionRef.get(gate.approvals.pending)
      yield* gate.approvals.answer(pending!.id, { approve: true, forLink: true, approver: "owner" })
      assert.deepStrictEqual(yield* first.await.pipe(Effect.map((e) => e._tag)), "Success")
      // Later asks of that link pass at once; another link still waits.
      assert.deepStrictEqual(yield* check("t3", "shr_2"), { allowed: true })
      const other = yield* Effect.fork(check("t4", "shr_3"))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* SubscriptionRef.get(gate.approvals.pending)).length, 1)
      yield* TestClock.adjust("60 seconds")
      assert.strictEqual((yield* other.await)._tag, "Success")
      const approvers = (yield* auditLog.read).map((e) => [e.session_id, e.decision, e.approver])
      assert.deepStrictEqual(approvers, [
        ["t1", "ask", null],
        ["t1", "deny", null],
        ["t2", "ask", null],
        ["t2", "allow", "owner"],
        ["t3", "allow", "owner (for the link)"],
        ["t4", "ask", null],
        ["t4", "deny", null]
      ])
    })
  )
})
