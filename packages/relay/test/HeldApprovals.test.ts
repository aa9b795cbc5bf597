/**
 * The gate's held sessions as the relay lists them, with a hand-driven agent on the memory store that reports each
 * held session (`ApprovalPending`) and never settles it, as an agent that ignores `SessionClose` while its gate
 * holds a session would: a held exec or attach is listed and answerable while its client waits; once the client is
 * gone the relay tells the agent `SessionClose`, and the request is neither listed nor answerable any more.
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import { AttachInput } from "@cmdop/domain/RelayClient"
import type { Caller } from "@cmdop/relay/Authenticator"
import type * as RelayCore from "@cmdop/relay/RelayCore"
import { assert, describe, it } from "@effect/vitest"
import { eventually } from "@cmdop/test-helpers/Eventually"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { agentIdentity, memoryCore } from "./agentDouble.js"

/** An agent for machine "box" with one live PTY session, "pty-1"; `expect` reads the relay's messages. */
const connect = (core: RelayCore.RelayCore["Type"], caller: Caller) =>
  Effect.gen(function* () {
    const toRelay = yield* Queue.unbounded<AgentLink.AgentMessage>()
    const fromRelay = yield* Queue.unbounded<AgentLink.RelayMessage>()
    yield* core.connectAgent(caller, Stream.fromQueue(toRelay)).pipe(
      Stream.runForEach((m) => Queue.offer(fromRelay, m)),
      Effect.forkScoped
    )
    yield* Queue.offer(toRelay, {
      _tag: "Hello",
      identity: agentIdentity("box"),
      window: 65536,
      ptySessions: [
        {
          sessionId: "pty-1",
          command: "/bin/sh",
          cols: 80,
          rows: 24,
          createdAt: 0,
          lastActivityAt: 0,
          outputOffset: 0,
          owner: caller.principal
        }
      ]
    })
    const expect = <T extends AgentLink.RelayMessage>(match: (m: AgentLink.RelayMessage) => m is T) =>
      Effect.gen(function* () {
        for (;;) {
          const m = yield* Queue.take(fromRelay)
          if (match(m)) return m
        }
      }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the relay did not send it") }))
    yield* expect((m): m is AgentLink.Welcome => m._tag === "Welcome")
    /** Reports session `sessionId` held, as the agent's gate does on an `ask`. */
    const hold = (approvalId: string, sessionId: string, mode: "exec" | "attach") =>
      Queue.offer(toRelay, {
        _tag: "ApprovalPending",
        approvalId,
        sessionId,
        caller: "alice",
        callerKind: "key",
        mode,
        command: mode === "exec" ? '["echo","x"]' : "attach session",
        rule: "/etc/cmdop/permissions.yaml:3",
        createdAt: 1,
        expiresAt: 60_001
      })
    return { toRelay, expect, hold }
  })

const isOpen = (m: AgentLink.RelayMessage): m is AgentLink.SessionOpen => m._tag === "SessionOpen"
const closeOf =
  (sessionId: string) =>
  (m: AgentLink.RelayMessage): m is AgentLink.SessionClose =>
    m._tag === "SessionClose" && m.sessionId === sessionId

/** What the relay lists: machine and id of each request. */
const listed = (core: RelayCore.RelayCore["Type"], caller: Caller) =>
  Effect.map(core.listApprovals(caller), (all) => all.map((a) => `${a.machine} ${a.approval.approvalId}`))

/** Waits until the relay lists `id` (it reads the agent's messages on a fiber of its own, in order). */
const listedSoon = (core: RelayCore.RelayCore["Type"], caller: Caller, id: string) =>
  eventually(
    `${id} listed`,
    Effect.map(listed(core, caller), (l) => (l.includes(`box ${id}`) ? l : undefined))
  )

describe("held sessions whose client went away", () => {
  it.scopedLive("a held exec: listed while its client waits; closed at the agent and gone from the list after", () =>
    Effect.gen(function* () {
      const { core, caller } = yield* memoryCore({ server: "test", staleAfter: "1 hour" })
      const agent = yield* connect(core, caller)

      const client = yield* core
        .exec(caller, { machine: "box", argv: ["echo", "x"] }, undefined)
        .pipe(Stream.runDrain, Effect.forkScoped)
      const opened = yield* agent.expect(isOpen)
      yield* agent.hold("ap_exec", opened.sessionId, "exec")
      assert.deepStrictEqual(yield* listedSoon(core, caller, "ap_exec"), ["box ap_exec"])

      // Ctrl-C: the client's call ends. The agent is told, and never settles the request: the relay drops it.
      yield* Fiber.interrupt(client)
      const closed = yield* agent.expect(closeOf(opened.sessionId))
      assert.strictEqual(closed.reason, "client went away")
      assert.deepStrictEqual(yield* listed(core, caller), [])
      const answered = yield* core
        .answerApproval(caller, { approvalId: "ap_exec", approve: true, forLink: false })
        .pipe(Effect.flip)
      assert.strictEqual(answered._tag, "RelayError")
      assert.include(answered.message, "no pending approval ap_exec")
      // A report of the gone session arriving late is not listed either.
      yield* agent.hold("ap_late", opened.sessionId, "exec")
      yield* agent.hold("ap_probe", "pty-1", "attach")
      assert.deepStrictEqual(yield* listedSoon(core, caller, "ap_probe"), ["box ap_probe"])
    })
  )

  it.scopedLive("a held attach check: its client gone, the agent is told to close it, and it is no longer listed", () =>
    Effect.gen(function* () {
      const { core, caller } = yield* memoryCore({ server: "test", staleAfter: "1 hour" })
      const agent = yield* connect(core, caller)
      const input = yield* Queue.unbounded<AttachInput>()
      const client = yield* core
        .attach(caller, { machine: "box", sessionId: "pty-1", cols: 80, rows: 24 }, Stream.fromQueue(input))
        .pipe(Stream.runDrain, Effect.forkScoped)
      const check = yield* agent.expect(isOpen)
      assert.strictEqual(check.spec._tag, "Attach")
      yield* agent.hold("ap_attach", check.sessionId, "attach")
      assert.deepStrictEqual(yield* listedSoon(core, caller, "ap_attach"), ["box ap_attach"])

      yield* Fiber.interrupt(client)
      const closed = yield* agent.expect(closeOf(check.sessionId))
      assert.strictEqual(closed.reason, "client went away")
      assert.deepStrictEqual(yield* listed(core, caller), [])
      const answered = yield* core
        .answerApproval(caller, { approvalId: "ap_attach", approve: true, forLink: false })
        .pipe(Effect.flip)
      assert.include(answered.message, "no pending approval ap_attach")
    })
  )
})
