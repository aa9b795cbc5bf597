/**
 * The relay core's agent side with a hand-driven agent speaking the domain's agent link, on the memory store and
 * the TestClock: the handshake's rules, liveness (a silent machine is closed and offline after `staleAfter`, a
 * heartbeating one stays), heartbeats written to the store in batches, and a rotated workspace key dropping the
 * machine at its next heartbeat.
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import * as RelayCore from "@cmdop/relay/RelayCore"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { hello, memoryCore } from "./agentDouble.js"

const setup = Effect.gen(function* () {
  const { core, store, caller } = yield* memoryCore({ server: "test", staleAfter: "90 seconds", heartbeatSeconds: 30 })
  const online = Effect.map(core.listMachines(caller, { onlineOnly: false }), (list) =>
    Object.fromEntries(list.machines.map((m) => [m.hostname, m.online]))
  )
  return { core, store, caller, online }
})

/** An agent driven by the test: what it sends goes in `toRelay`, what the relay says comes out of `fromRelay`. */
const connect = (core: RelayCore.RelayCore["Type"], caller: Parameters<RelayCore.RelayCore["Type"]["whoami"]>[0]) =>
  Effect.gen(function* () {
    const toRelay = yield* Queue.unbounded<AgentLink.AgentMessage>()
    const fromRelay = yield* Queue.unbounded<AgentLink.RelayMessage>()
    const fiber = yield* core.connectAgent(caller, Stream.fromQueue(toRelay)).pipe(
      Stream.runForEach((m) => Queue.offer(fromRelay, m)),
      Effect.forkScoped
    )
    return { toRelay, fromRelay, fiber }
  })

describe("RelayCore agent link", () => {
  it.scoped("Welcome answers Hello, with the machine online and the relay's terms", () =>
    Effect.gen(function* () {
      const { caller, core, online } = yield* setup
      const agent = yield* connect(core, caller)
      yield* Queue.offer(agent.toRelay, { ...hello("box"), window: 1 << 30 })
      const welcome = yield* Queue.take(agent.fromRelay)
      assert.strictEqual(welcome._tag, "Welcome")
      if (welcome._tag !== "Welcome") return
      assert.strictEqual(welcome.machine.hostname, "box")
      assert.isTrue(welcome.machine.online)
      assert.strictEqual(welcome.workspaceName, "w")
      assert.strictEqual(welcome.heartbeatSeconds, 30)
      // The agent's window is capped at the relay's (8 MiB by default).
      assert.strictEqual(welcome.window, 8 * 1024 * 1024)
      assert.deepStrictEqual(yield* online, { box: true })
    })
  )

  it.scoped(
    "messages the relay cannot read are skipped, before Hello and after; the caller may be authenticated in setup",
    () =>
      Effect.gen(function* () {
        const { caller, core } = yield* setup
        const toRelay = yield* Queue.unbounded<AgentLink.AgentMessage | { readonly _tag: "Unreadable" }>()
        const fromRelay = yield* Queue.unbounded<AgentLink.RelayMessage>()
        yield* core.connectAgent(Effect.succeed(caller), Stream.fromQueue(toRelay)).pipe(
          Stream.runForEach((m) => Queue.offer(fromRelay, m)),
          Effect.forkScoped
        )
        yield* Queue.offerAll(toRelay, [{ _tag: "Unreadable" }, hello("skips"), { _tag: "Unreadable" }])
        assert.strictEqual((yield* Queue.take(fromRelay))._tag, "Welcome")
        yield* Queue.offerAll(toRelay, [{ _tag: "Unreadable" }, { _tag: "Heartbeat", at: 7 }])
        assert.deepStrictEqual(yield* Queue.take(fromRelay), { _tag: "Heartbeat", at: 7 })
      })
  )

  it.scoped("a stream that does not start with Hello is refused; so is one silent for 15 s", () =>
    Effect.gen(function* () {
      const { caller, core } = yield* setup
      const wrong = yield* connect(core, caller)
      yield* Queue.offer(wrong.toRelay, { _tag: "Heartbeat", at: 1 })
      const refused = yield* Effect.flip(Fiber.join(wrong.fiber))
      assert.strictEqual(refused._tag === "RelayError" && refused.detail, "the first agent message must be Hello")

      const silent = yield* connect(core, caller)
      yield* TestClock.adjust("15 seconds")
      const timedOut = yield* Effect.flip(Fiber.join(silent.fiber))
      assert.strictEqual(timedOut._tag === "RelayError" && timedOut.detail, "the agent sent no Hello")
    })
  )

  it.scoped("a name with control characters is refused before anything is stored (it would act in terminals)", () =>
    Effect.gen(function* () {
      const { caller, core, online } = yield* setup
      const evil = hello("evil")
      const agent = yield* connect(core, caller)
      yield* Queue.offer(agent.toRelay, {
        ...evil,
        identity: { ...evil.identity, name: "x\u001b]52;c;cm0gLXJm\u0007" }
      })
      const refused = yield* Effect.flip(Fiber.join(agent.fiber))
      assert.strictEqual(refused._tag, "AccessError")
      assert.include(refused.message, "invalid machine name")
      assert.deepStrictEqual(yield* online, {})
      // A name with spaces and any other printable characters is still a name.
      const fine = hello("fine")
      const ok = yield* connect(core, caller)
      yield* Queue.offer(ok.toRelay, { ...fine, identity: { ...fine.identity, name: "Web <one> & «two»" } })
      assert.strictEqual((yield* Queue.take(ok.fromRelay))._tag, "Welcome")
    })
  )

  it.scoped("a machine silent for longer than staleAfter is closed and offline; a heartbeating one stays", () =>
    Effect.gen(function* () {
      const { caller, core, online } = yield* setup
      const silent = yield* connect(core, caller)
      yield* Queue.offer(silent.toRelay, hello("silent"))
      const chatty = yield* connect(core, caller)
      yield* Queue.offer(chatty.toRelay, hello("chatty"))
      assert.strictEqual((yield* Queue.take(silent.fromRelay))._tag, "Welcome")
      assert.strictEqual((yield* Queue.take(chatty.fromRelay))._tag, "Welcome")

      for (let i = 0; i < 4; i++) {
        yield* TestClock.adjust("30 seconds")
        yield* Queue.offer(chatty.toRelay, { _tag: "Heartbeat", at: i })
        // The relay echoes each heartbeat once it has handled it.
        assert.deepStrictEqual(yield* Queue.take(chatty.fromRelay), { _tag: "Heartbeat", at: i })
      }
      // 120 s without a word from `silent`: its stream has ended, and it is offline.
      yield* Fiber.join(silent.fiber)
      assert.deepStrictEqual(yield* online, { chatty: true, silent: false })
    })
  )

  it.scoped("heartbeats reach the store in batches every 15 s and at the close; listings show the latest at once", () =>
    Effect.gen(function* () {
      const { caller, core, store } = yield* setup
      const agent = yield* connect(core, caller)
      yield* Queue.offer(agent.toRelay, hello("box"))
      const welcome = yield* Queue.take(agent.fromRelay)
      if (welcome._tag !== "Welcome") return assert.fail(welcome._tag)
      const id = welcome.machine.id
      const stored = Effect.map(store.getMachine(id), (m) => [m.online, m.lastHeartbeatAt] as const)
      const listed = Effect.map(core.listMachines(caller, { onlineOnly: false }), (l) => l.machines[0]!.lastHeartbeatAt)
      const beat = (at: number) =>
        Effect.gen(function* () {
          yield* Queue.offer(agent.toRelay, { _tag: "Heartbeat", at })
          assert.deepStrictEqual(yield* Queue.take(agent.fromRelay), { _tag: "Heartbeat", at })
        })

      yield* TestClock.adjust("5 seconds")
      yield* beat(1)
      // Not one commit per heartbeat: the store still has the connect time; the listing has the heartbeat.
      assert.deepStrictEqual(yield* stored, [true, 0])
      assert.strictEqual(yield* listed, 5_000)
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(yield* stored, [true, 5_000])

      yield* TestClock.adjust("5 seconds")
      yield* beat(2)
      yield* Queue.shutdown(agent.toRelay)
      yield* Fiber.join(agent.fiber)
      // The closing connection wrote its last heartbeat before going offline.
      assert.deepStrictEqual(yield* stored, [false, 20_000])
    })
  )

  it.scoped(
    "cluster mode: a heartbeat reuses its key's verdict until the cluster announces a change, 2 s at most",
    () =>
      Effect.gen(function* () {
        const announced = { events: 0 }
        const { core, store, caller } = yield* memoryCore({
          server: "test",
          heartbeatSeconds: 30,
          recheckVersion: () => String(announced.events)
        })
        const onlineOf = Effect.map(core.listMachines(caller, { onlineOnly: false }), (list) =>
          Object.fromEntries(list.machines.map((m) => [m.hostname, m.online]))
        )
        const beat = (agent: Effect.Effect.Success<ReturnType<typeof connect>>, at: number) =>
          Effect.zipRight(Queue.offer(agent.toRelay, { _tag: "Heartbeat", at }), Queue.take(agent.fromRelay))

        // Announced: the rotation reaches the next heartbeat.
        const one = yield* connect(core, caller)
        yield* Queue.offer(one.toRelay, hello("one"))
        assert.strictEqual((yield* Queue.take(one.fromRelay))._tag, "Welcome")
        assert.deepStrictEqual(yield* beat(one, 1), { _tag: "Heartbeat", at: 1 })
        const next = yield* store.rotateKey("w")
        // Nothing announced yet: the verdict of a moment ago stands, the machine stays.
        assert.deepStrictEqual(yield* beat(one, 2), { _tag: "Heartbeat", at: 2 })
        announced.events++
        yield* Queue.offer(one.toRelay, { _tag: "Heartbeat", at: 3 })
        yield* Fiber.join(one.fiber)
        assert.deepStrictEqual(yield* onlineOf, { one: false })

        // Not announced (a missed notification): the verdict is reused for 2 s at most.
        const fresh = yield* core.authenticate(next)
        const two = yield* connect(core, fresh)
        yield* Queue.offer(two.toRelay, hello("two"))
        assert.strictEqual((yield* Queue.take(two.fromRelay))._tag, "Welcome")
        assert.deepStrictEqual(yield* beat(two, 1), { _tag: "Heartbeat", at: 1 })
        yield* store.rotateKey("w")
        assert.deepStrictEqual(yield* beat(two, 2), { _tag: "Heartbeat", at: 2 })
        yield* TestClock.adjust("2 seconds")
        yield* Queue.offer(two.toRelay, { _tag: "Heartbeat", at: 3 })
        yield* Fiber.join(two.fiber)
        assert.deepStrictEqual(yield* onlineOf, { one: false, two: false })
      })
  )

  it.scoped("a rotated workspace key drops the machine at its next heartbeat", () =>
    Effect.gen(function* () {
      const { caller, core, online, store } = yield* setup
      const agent = yield* connect(core, caller)
      yield* Queue.offer(agent.toRelay, hello("box"))
      assert.strictEqual((yield* Queue.take(agent.fromRelay))._tag, "Welcome")
      yield* store.rotateKey("w")
      yield* Queue.offer(agent.toRelay, { _tag: "Heartbeat", at: 1 })
      yield* Fiber.join(agent.fiber)
      assert.deepStrictEqual(yield* online, { box: false })
    })
  )
})
