/**
 * Guests and the machine's sessions, with a hand-driven agent on the memory store and the TestClock (issue 9): a
 * share-link guest lists and joins only its own link's sessions (the owner's is refused like a missing one, and
 * no owner details show); a link for one session reaches that session only; the end of a link (revocation, key
 * rotation, also for a session adopted after a relay restart) closes the guest's sessions at the agent, and the
 * revoke answer says how many and whether it was already revoked. Also the relay's checks of what clients and
 * agents send: terminal sizes, exit codes and signal names, and signals on exec streams.
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import { AttachInput } from "@cmdop/domain/RelayClient"
import type { AttachEvent, AttachRequest, ExecEvent } from "@cmdop/domain/RelayClient"
import type { Caller } from "@cmdop/relay/Authenticator"
import * as RelayCore from "@cmdop/relay/RelayCore"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { admitAttaches, agentIdentity, memoryCore } from "./agentDouble.js"

const setupWith = (sweeps: Pick<RelayCore.Options, "guestSweep" | "credentialSweep">) =>
  Effect.gen(function* () {
    // These agents never heartbeat: a long `staleAfter` keeps them connected while the TestClock runs for hours.
    const world = yield* memoryCore({ server: "test", staleAfter: "2 days", ...sweeps })
    return { core: world.core, store: world.store, owner: world.caller }
  })

const setup = setupWith({ guestSweep: "5 seconds" })

const identity = () => agentIdentity("box")

const ptyInfo = (sessionId: string, owner: string): AgentLink.PtySessionInfo => ({
  sessionId,
  command: "/bin/sh",
  cols: 80,
  rows: 24,
  createdAt: 0,
  lastActivityAt: 0,
  outputOffset: 0,
  owner
})

/** A hand-driven agent for machine "box": `expect` reads what the relay sent until a message matches. */
const connect = (
  core: RelayCore.RelayCore["Type"],
  caller: Caller,
  id: ReturnType<typeof identity>,
  ptySessions: ReadonlyArray<AgentLink.PtySessionInfo> = []
) =>
  Effect.gen(function* () {
    const toRelay = yield* Queue.unbounded<AgentLink.AgentMessage>()
    const fromRelay = yield* Queue.unbounded<AgentLink.RelayMessage>()
    yield* core
      .connectAgent(caller, Stream.fromQueue(toRelay))
      .pipe(Stream.runForEach(admitAttaches(toRelay, (m) => Queue.offer(fromRelay, m))), Effect.forkScoped)
    yield* Queue.offer(toRelay, { _tag: "Hello", identity: id, window: 65536, ptySessions })
    const seen: Array<AgentLink.RelayMessage> = []
    const expect = <T extends AgentLink.RelayMessage>(match: (m: AgentLink.RelayMessage) => m is T) =>
      Effect.gen(function* () {
        for (;;) {
          const m = yield* Queue.take(fromRelay)
          seen.push(m)
          if (match(m)) return m
        }
      })
    /** Everything the relay sent so far (without waiting). */
    const drain = Effect.map(Queue.takeAll(fromRelay), (chunk) => {
      seen.push(...chunk)
      return seen
    })
    yield* expect((m): m is AgentLink.Welcome => m._tag === "Welcome")
    return { toRelay, expect, drain }
  })

const isOpen = (m: AgentLink.RelayMessage): m is AgentLink.SessionOpen => m._tag === "SessionOpen"
const closeOf =
  (sessionId: string) =>
  (m: AgentLink.RelayMessage): m is AgentLink.SessionClose =>
    m._tag === "SessionClose" && m.sessionId === sessionId

/** Attaches in the background; the first event (Attached) or the failure. */
const attach = (core: RelayCore.RelayCore["Type"], caller: Caller, request: Omit<AttachRequest, "machine">) =>
  Effect.gen(function* () {
    const input = yield* Queue.unbounded<AttachInput>()
    const events = yield* Queue.unbounded<AttachEvent>()
    const fiber = yield* core.attach(caller, { machine: "box", ...request }, Stream.fromQueue(input)).pipe(
      Stream.runForEach((e) => Queue.offer(events, e)),
      Effect.either,
      Effect.forkScoped
    )
    return { input, events, fiber }
  })

const mintGuest = (core: RelayCore.RelayCore["Type"], owner: Caller, options?: { readonly sessionId?: string }) =>
  Effect.gen(function* () {
    const minted = yield* core.createShare(owner, "box", 3600, options)
    return { minted, guest: yield* core.authenticate(Redacted.make(minted.token)) }
  })

describe("guests reach only their own link's sessions", () => {
  it.scoped("a guest lists and joins only its sessions; the owner's is refused like a missing one", () =>
    Effect.gen(function* () {
      const { core, owner } = yield* setup
      const agent = yield* connect(core, owner, identity(), [ptyInfo("owner-pty", owner.principal)])
      const { guest, minted } = yield* mintGuest(core, owner)

      const mine = yield* attach(core, guest, { cols: 80, rows: 24 })
      const opened = yield* agent.expect(isOpen)
      assert.deepStrictEqual(opened.caller, { kind: "guest", principal: guest.principal, shareId: minted.link.id })
      const head = yield* Queue.take(mine.events)
      assert.strictEqual(head._tag, "Attached")

      const listed = yield* core.listSessions(guest, "box")
      assert.deepStrictEqual(
        listed.sessions.map((s) => [s.sessionId, s.owner]),
        [[opened.sessionId, `share ${minted.link.id}`]]
      )
      assert.notInclude(JSON.stringify(listed), owner.principal)
      const all = yield* core.listSessions(owner, "box")
      assert.sameMembers(
        all.sessions.map((s) => s.sessionId),
        ["owner-pty", opened.sessionId]
      )

      // The owner's session and a session that does not exist are refused alike.
      const theirs = yield* attach(core, guest, { sessionId: "owner-pty", cols: 80, rows: 24 })
      const missing = yield* attach(core, guest, { sessionId: "no-such-pty", cols: 80, rows: 24 })
      const refused = yield* theirs.fiber.await.pipe(Effect.flatMap((exit) => exit))
      const absent = yield* missing.fiber.await.pipe(Effect.flatMap((exit) => exit))
      assert.isTrue(refused._tag === "Left" && refused.left._tag === "MachineError")
      if (refused._tag !== "Left" || absent._tag !== "Left") return
      assert.strictEqual(
        refused.left.message.replace("owner-pty", "X"),
        absent.left.message.replace("no-such-pty", "X")
      )
      assert.strictEqual((yield* Queue.takeAll(theirs.events)).length, 0)
    })
  )

  it.scoped("revoking ends the guest's sessions on the machine, says how many, and says when already revoked", () =>
    Effect.gen(function* () {
      const { core, owner } = yield* setup
      const agent = yield* connect(core, owner, identity(), [ptyInfo("owner-pty", owner.principal)])
      const { guest, minted } = yield* mintGuest(core, owner)
      const first = yield* attach(core, guest, { cols: 80, rows: 24 })
      const a = yield* agent.expect(isOpen)
      // The guest detaches (a closed browser tab): the session lives on at the agent, and is still the link's.
      yield* Queue.take(first.events)
      yield* Queue.shutdown(first.input)
      const second = yield* attach(core, guest, { cols: 80, rows: 24 })
      const b = yield* agent.expect(isOpen)
      yield* Queue.take(second.events)

      const revoked = yield* core.revokeShare(owner, minted.link.id)
      assert.strictEqual(revoked.sessionsEnded, 2)
      assert.isUndefined(revoked.alreadyRevoked)
      yield* agent.expect(closeOf(a.sessionId))
      yield* agent.expect(closeOf(b.sessionId))
      const cut = yield* Queue.take(second.events)
      assert.deepInclude(cut, { _tag: "Ended", reason: "share link revoked", cut: true })
      assert.isFalse((yield* agent.drain).some(closeOf("owner-pty")), "the owner's session goes on")

      // The agent reports the exits; revoking again changes nothing and says so.
      for (const id of [a.sessionId, b.sessionId])
        yield* Queue.offer(agent.toRelay, {
          _tag: "SessionExit",
          sessionId: id,
          exitCode: 129,
          signal: "HUP",
          timedOut: false,
          durationMs: 1
        })
      const again = yield* core.revokeShare(owner, minted.link.id)
      assert.isTrue(again.alreadyRevoked)
      assert.strictEqual(again.sessionsEnded, 0)
      assert.strictEqual(again.revokedAt, revoked.revokedAt)
    })
  )

  it.scoped("a guest's session adopted after a relay restart stays its link's; key rotation closes it", () =>
    Effect.gen(function* () {
      const { core, owner, store } = yield* setup
      const id = identity()
      yield* connect(core, owner, id)
      const { guest } = yield* mintGuest(core, owner)
      // The agent reconnects (a relay restart) reporting a shell the guest opened earlier, and the owner's.
      const agent = yield* connect(core, owner, id, [
        ptyInfo("guest-pty", guest.principal),
        ptyInfo("owner-pty", owner.principal)
      ])
      assert.deepStrictEqual(
        (yield* core.listSessions(guest, "box")).sessions.map((s) => s.sessionId),
        ["guest-pty"]
      )
      yield* store.rotateKey("w")
      yield* TestClock.adjust("5 seconds")
      const close = yield* agent.expect(closeOf("guest-pty"))
      assert.include(close.reason, "key was rotated")
      assert.isFalse((yield* agent.drain).some(closeOf("owner-pty")))
    })
  )

  it.scoped(
    "expiry closes the guest's shells at the agent: at the expiry when attached, at the next sweep if not",
    () =>
      Effect.gen(function* () {
        // `TestClock.adjust` steps through every timer due on the way: over an hour, sweeps a minute apart instead
        // of 5 s are a twelfth of the steps. Both periods divide the hour, so a sweep falls on the expiry either way.
        const { core, owner } = yield* setupWith({ guestSweep: "1 minute", credentialSweep: "1 hour" })
        const agent = yield* connect(core, owner, identity(), [ptyInfo("owner-pty", owner.principal)])
        const { guest } = yield* mintGuest(core, owner)
        const attached = yield* attach(core, guest, { cols: 80, rows: 24 })
        const a = yield* agent.expect(isOpen)
        yield* Queue.take(attached.events)
        const left = yield* attach(core, guest, { cols: 80, rows: 24 })
        const b = yield* agent.expect(isOpen)
        yield* Queue.take(left.events)
        yield* Queue.shutdown(left.input)

        yield* TestClock.adjust("1 hour")
        const closed = yield* agent.expect(closeOf(a.sessionId))
        assert.strictEqual(closed.reason, "share link expired")
        assert.deepInclude(yield* Queue.take(attached.events), {
          _tag: "Ended",
          reason: "share link expired",
          cut: true
        })
        // The detached one goes at the sweep after the expiry (every minute here).
        yield* TestClock.adjust("1 minute")
        yield* agent.expect(closeOf(b.sessionId))
        assert.isFalse((yield* agent.drain).some(closeOf("owner-pty")))
      })
  )

  it.scoped("a link for one session reaches that session only: no new shell, no command", () =>
    Effect.gen(function* () {
      const { core, owner } = yield* setup
      const agent = yield* connect(core, owner, identity(), [
        ptyInfo("owner-pty", owner.principal),
        ptyInfo("other-pty", owner.principal)
      ])
      const unknown = yield* Effect.flip(core.createShare(owner, "box", 3600, { sessionId: "nope" }))
      assert.include(unknown.message, "no live interactive session nope on box")

      const { guest, minted } = yield* mintGuest(core, owner, { sessionId: "owner-pty" })
      assert.strictEqual(minted.link.sessionId, "owner-pty")
      const listed = yield* core.listSessions(guest, "box")
      assert.deepStrictEqual(
        listed.sessions.map((s) => [s.sessionId, s.owner]),
        [["owner-pty", "shared with you"]]
      )
      const fresh = yield* attach(core, guest, { cols: 80, rows: 24 })
      const denied = yield* fresh.fiber.await.pipe(Effect.flatMap((exit) => exit))
      assert.isTrue(denied._tag === "Left" && denied.left._tag === "AccessError")
      if (denied._tag === "Left") assert.include(denied.left.message, "one terminal session (owner-pty) only")
      const exec = yield* Effect.flip(Stream.runDrain(core.exec(guest, { machine: "box", argv: ["id"] }, undefined)))
      assert.strictEqual(exec._tag, "AccessError")
      const other = yield* attach(core, guest, { sessionId: "other-pty", cols: 80, rows: 24 })
      const otherRefused = yield* other.fiber.await.pipe(Effect.flatMap((exit) => exit))
      assert.isTrue(otherRefused._tag === "Left" && otherRefused.left._tag === "MachineError")

      const joined = yield* attach(core, guest, { sessionId: "owner-pty", cols: 80, rows: 24 })
      assert.deepInclude(yield* Queue.take(joined.events), { _tag: "Attached", sessionId: "owner-pty" })
      // Revoking cuts the guest off; the owner's session itself goes on.
      const revoked = yield* core.revokeShare(owner, minted.link.id)
      assert.strictEqual(revoked.sessionsEnded, 0)
      assert.deepInclude(yield* Queue.take(joined.events), { _tag: "Ended", reason: "share link revoked", cut: true })
      assert.isFalse((yield* agent.drain).some(closeOf("owner-pty")))
    })
  )
})

describe("the relay checks what clients and agents send", () => {
  it.scoped("terminal sizes outside 1..1000 are refused with InvalidRequest", () =>
    Effect.gen(function* () {
      const { core, owner } = yield* setup
      const agent = yield* connect(core, owner, identity())
      for (const [cols, rows] of [
        [5000, 24],
        [80, 0],
        [-1, 24]
      ] as const) {
        const tried = yield* attach(core, owner, { cols, rows })
        const result = yield* tried.fiber.await.pipe(Effect.flatMap((exit) => exit))
        assert.isTrue(result._tag === "Left" && result.left._tag === "RelayError")
        if (result._tag === "Left" && result.left._tag === "RelayError") {
          assert.strictEqual(result.left.reason, "InvalidRequest")
          assert.include(result.left.message, `invalid terminal size ${cols}x${rows}`)
        }
      }
      // A resize out of range ends that viewer with the reason, and never reaches the agent.
      const ok = yield* attach(core, owner, { cols: 80, rows: 24 })
      const opened = yield* agent.expect(isOpen)
      yield* Queue.take(ok.events)
      yield* Queue.offer(ok.input, AttachInput.Resize({ cols: 100_000, rows: 50 }))
      const ended = yield* ok.fiber.await.pipe(Effect.flatMap((exit) => exit))
      assert.isTrue(ended._tag === "Left" && ended.left.message.includes("columns and rows must each be 1 to 1000"))
      const sent = yield* agent.drain
      assert.isFalse(sent.some((m) => m._tag === "SessionResize" && m.sessionId === opened.sessionId))
    })
  )

  it.scoped("an agent's out-of-range exit code and unknown signal never reach the client as sent", () =>
    Effect.gen(function* () {
      const { core, owner } = yield* setup
      const agent = yield* connect(core, owner, identity())
      const events = yield* Queue.unbounded<ExecEvent>()
      const run = yield* core.exec(owner, { machine: "box", argv: ["true"] }, undefined).pipe(
        Stream.runForEach((e) => Queue.offer(events, e)),
        Effect.forkScoped
      )
      const opened = yield* agent.expect(isOpen)
      yield* Queue.offer(agent.toRelay, {
        _tag: "SessionExit",
        sessionId: opened.sessionId,
        exitCode: 70_000,
        signal: "<script>",
        timedOut: false,
        durationMs: 1
      })
      yield* run.await
      const exit = (yield* Queue.takeAll(events)).pipe((c) => [...c]).find((e) => e._tag === "Exit")
      assert.deepInclude(exit, { exitCode: 255 })
      assert.isUndefined(exit?._tag === "Exit" ? exit.signal : "missing")
      assert.include(exit?._tag === "Exit" ? exit.error : "", "invalid exit code (70000)")
    })
  )

  it.scoped("signals on an exec stream reach the agent by name; an unknown one is refused", () =>
    Effect.gen(function* () {
      const { core, owner } = yield* setup
      const agent = yield* connect(core, owner, identity())
      const input = yield* Queue.unbounded<RelayCore.ExecInput>()
      const run = yield* core
        .exec(owner, { machine: "box", argv: ["sleep", "9"] }, Stream.fromQueue(input), { stdin: false })
        .pipe(Stream.runDrain, Effect.either, Effect.forkScoped)
      const opened = yield* agent.expect(isOpen)
      assert.deepInclude(opened.spec, { _tag: "Exec", stdin: false })
      yield* Queue.offer(input, { _tag: "Signal", signal: "sigint" })
      const signal = yield* agent.expect((m): m is AgentLink.SessionSignal => m._tag === "SessionSignal")
      assert.deepStrictEqual(signal, { _tag: "SessionSignal", sessionId: opened.sessionId, signal: "INT" })
      yield* Queue.offer(input, { _tag: "Signal", signal: "BOGUS" })
      const result = yield* run.await.pipe(Effect.flatMap((exit) => exit))
      assert.isTrue(result._tag === "Left" && result.left._tag === "RelayError")
      if (result._tag === "Left") assert.include(result.left.message, 'unknown signal "BOGUS"')
    })
  )
})
