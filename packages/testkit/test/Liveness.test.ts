/**
 * Relay liveness: a machine whose agent goes silent is offline once `staleAfter` has passed (90 s in production,
 * shortened here), and one whose stream closes is offline at once.
 */
import { assert, describe, it } from "@effect/vitest"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayClientInProcess from "@cmdop/relay/RelayClientInProcess"
import type { AgentMessage } from "@cmdop/domain/AgentLink"
import * as InProcessAgent from "@cmdop/testkit/InProcessAgent"
import * as ProcessRunnerMemory from "@cmdop/agent/ProcessRunnerMemory"
import { eventually } from "@cmdop/test-helpers/Eventually"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as TestServices from "effect/TestServices"
import { memoryRelay } from "./memoryRelay.js"

const setup = Effect.gen(function* () {
  const { context, store, core } = yield* memoryRelay({ server: "test", staleAfter: "600 millis" })
  const key = Redacted.value((yield* store.createWorkspace(WorkspaceName.make("w"))).apiKey)
  const client = yield* Effect.provide(RelayClientInProcess.make(Redacted.make(key)), context)
  const online = Effect.map(client.listMachines(), (l) => l.machines.map((m) => [m.hostname, m.online] as const))
  return { core, key, online, context }
})

/** Polls `online` on the real clock (the TestClock stands still meanwhile) until it lists `expected`. */
const onlineBecomes = (online: Effect.Effect<ReadonlyArray<readonly [string, boolean]>, unknown>, expected: unknown) =>
  eventually(
    `machines ${JSON.stringify(expected)}`,
    Effect.map(online, (l) => (JSON.stringify([...l].sort()) === JSON.stringify(expected) ? true : undefined))
  ).pipe(TestServices.provideLive)

/** Moves the TestClock in steps, letting the relay's fibers run between them (on the real clock). */
const advance = (total: number, step: number, between: Effect.Effect<void> = Effect.void) =>
  Effect.forEach(
    Array.from({ length: Math.ceil(total / step) }),
    () =>
      Effect.zipRight(
        between,
        Effect.zipRight(TestClock.adjust(step), Effect.sleep("5 millis").pipe(TestServices.provideLive))
      ),
    { discard: true }
  )

describe("relay liveness", () => {
  it.scoped("a silent agent goes offline after staleAfter; a talking one stays online", () =>
    Effect.gen(function* () {
      const { core, key, online } = yield* setup
      // A hand-driven agent that says Hello and then nothing at all.
      const caller = yield* core.authenticate(Redacted.make(key))
      const toRelay = yield* Queue.unbounded<AgentMessage>()
      yield* Queue.offer(toRelay, {
        _tag: "Hello",
        identity: InProcessAgent.identity({ hostname: "silent" }),
        window: 65536,
        ptySessions: []
      })
      yield* core.connectAgent(caller, Stream.fromQueue(toRelay)).pipe(Stream.runDrain, Effect.forkScoped)
      // A heartbeating one: a heartbeat every 150 ms of the TestClock's time.
      const chatty = yield* Queue.unbounded<AgentMessage>()
      yield* Queue.offer(chatty, {
        _tag: "Hello",
        identity: InProcessAgent.identity({ hostname: "chatty" }),
        window: 65536,
        ptySessions: []
      })
      yield* core.connectAgent(caller, Stream.fromQueue(chatty)).pipe(Stream.runDrain, Effect.forkScoped)
      const heartbeat = Effect.asVoid(Queue.offer(chatty, { _tag: "Heartbeat", at: Date.now() }))
      yield* onlineBecomes(online, [
        ["chatty", true],
        ["silent", true]
      ])
      // Before staleAfter (600 ms) both are online; well after it, only the talking one.
      yield* advance(450, 150, heartbeat)
      assert.deepStrictEqual([...(yield* online)].sort(), [
        ["chatty", true],
        ["silent", true]
      ])
      yield* advance(1050, 150, heartbeat)
      yield* onlineBecomes(online, [
        ["chatty", true],
        ["silent", false]
      ])
    })
  )

  it.scoped("a closed stream is offline at once: no time passes on the TestClock", () =>
    Effect.gen(function* () {
      const { context, key, online } = yield* setup
      const agent = yield* InProcessAgent.attach(key, InProcessAgent.identity({ hostname: "brief" }), {
        hostname: "brief"
      }).pipe(Effect.provide(context), Effect.provide(ProcessRunnerMemory.layer))
      assert.deepStrictEqual(yield* online, [["brief", true]])
      yield* agent.stop
      yield* onlineBecomes(online, [["brief", false]])
    })
  )
})
