/**
 * A connect storm on a cluster node: the handshakes' store work (key check, registration, online mark and route
 * claim) waits its turn for one of a few permits instead of piling onto the PostgreSQL pool (where a wait over the
 * pool's 5 s failed with "Failed to acquire connection"); one still waiting after the queue limit is a `Busy` store
 * error, which the agent is told as UNAVAILABLE (retry later), not INTERNAL. And a heartbeat whose key check the
 * store could not answer leaves the agent's stream up (only a refused key ends it).
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import { RelayError } from "@cmdop/domain/RelayError"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as ClusterStore from "@cmdop/relay/cluster/ClusterStore"
import { MachineRoutes } from "@cmdop/relay/cluster/MachineRoutes"
import * as MachineRoutesPg from "@cmdop/relay/cluster/MachineRoutesPg"
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import { RelayStoreError } from "@cmdop/relay/store/RelayStoreError"
import { freshPgDatabase } from "@cmdop/test-helpers/Postgres"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { randomBytes, randomUUID } from "node:crypto"
import { hello } from "../agentDouble.js"

const sqlFailure = (subject: string) =>
  new RelayStoreError({ reason: "Sql", subject, detail: "Failed to acquire connection" })

describe("handshake store work under a connect storm", () => {
  it.live(
    "300 handshakes at once on real PostgreSQL: all succeed, at most the permits' worth on the store at a time",
    () =>
      Effect.gen(function* () {
        const url = Redacted.make(yield* freshPgDatabase("cmdop_handshake_storm"))
        const context = yield* Layer.build(
          Layer.merge(RelayStore.layerPostgres({ url }), MachineRoutesPg.layerPostgres({ url }))
        )
        const store = Context.get(context, RelayStore.RelayStore)
        const routes = Context.get(context, MachineRoutes)
        const lease = { nodeId: "n1", peerAddress: "127.0.0.1:1", instance: randomUUID() }
        yield* routes.renewLease(lease)
        const created = yield* store.createWorkspace(WorkspaceName.make("storm"))
        // The real store, counting the handshake operations running on it at once.
        let running = 0
        let most = 0
        const counted = <A, E>(work: Effect.Effect<A, E>) =>
          Effect.acquireUseRelease(
            Effect.sync(() => {
              running += 1
              most = Math.max(most, running)
            }),
            () => work,
            () => Effect.sync(() => (running -= 1))
          )
        const watched: RelayStore.RelayStore["Type"] = {
          ...store,
          authenticateKey: (key) => counted(store.authenticateKey(key)),
          registerMachine: (registration) => counted(store.registerMachine(registration)),
          markOnline: (id, at) => counted(store.markOnline(id, at))
        }
        // No queue limit worth the name here (the busy refusal has its own test): on a loaded box 300 handshakes
        // through 4 permits may take minutes, and every one must go through.
        const node = ClusterStore.make(watched, routes, "n1", { permits: 4, queue: "10 minutes", maxWaiting: 10_000 })
        const handshakes = 300
        yield* Effect.forEach(
          Array.from({ length: handshakes }, (_, i) => i),
          (i) =>
            Effect.gen(function* () {
              yield* node.authenticateKey(created.apiKey)
              const machine = yield* node.registerMachine({
                id: RelayStore.MachineRegistration.fields.id.make(randomUUID()),
                workspaceId: created.workspace.id,
                hostname: `storm-${i}`,
                name: `storm-${i}`,
                os: "linux",
                agentVersion: "test",
                secretHash: randomBytes(32).toString("hex")
              })
              yield* node.markOnline(machine.id, Date.now(), {})
            }),
          { concurrency: "unbounded", discard: true }
        )
        assert.isAtMost(most, 4, "handshake operations on the store at once")
        assert.isAtLeast(most, 1)
        // Renewed (as the node does every few seconds): the storm may outlast a lease on a busy box.
        yield* routes.renewLease(lease)
        const listed = yield* node.listMachines(created.workspace.id)
        assert.strictEqual(listed.filter((m) => m.online).length, handshakes)
      }).pipe(Effect.scoped),
    600_000
  )

  it.effect("beyond the bound of waiting handshakes, the next one is refused at once, before any store work", () =>
    Effect.gen(function* () {
      const { gated, waiting } = ClusterStore.turnstile(1, "20 seconds", 2)
      const hold = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(gated("registerMachine", Deferred.await(hold)))
      yield* Effect.yieldNow()
      const waiters = yield* Effect.forEach([1, 2], (n) => Effect.fork(gated("markOnline", Effect.succeed(n))))
      yield* Effect.zipRight(Effect.yieldNow(), waiting).pipe(Effect.repeat({ until: (n) => n === 2 }))
      let ran = false
      const refused = yield* Effect.flip(
        gated(
          "authenticateKey",
          Effect.sync(() => (ran = true))
        )
      )
      assert.isFalse(ran)
      assert.strictEqual(refused.subject, "authenticateKey")
      assert.include(refused.message, `${ClusterStore.BUSY} (2 waiting behind 1 running)`)
      yield* Deferred.succeed(hold, undefined)
      yield* Fiber.join(holder)
      assert.deepStrictEqual(yield* Effect.forEach(waiters, Fiber.join), [1, 2])
      // Once the queue drained, handshakes are taken again.
      assert.strictEqual(yield* gated("authenticateKey", Effect.succeed("again")), "again")
    })
  )

  it.effect("a handshake still waiting after the queue limit is a Busy store error; a release always waits", () =>
    Effect.gen(function* () {
      const { gated, queued } = ClusterStore.turnstile(1, "20 seconds")
      const hold = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(gated("registerMachine", Deferred.await(hold)))
      yield* Effect.yieldNow()
      const waiting = yield* Effect.fork(Effect.flip(gated("markOnline", Effect.succeed("ran"))))
      const release = yield* Effect.fork(queued(Effect.succeed("released")))
      yield* TestClock.adjust("19 seconds")
      assert.isTrue((yield* Fiber.poll(waiting))._tag === "None", "still waiting before the limit")
      yield* TestClock.adjust("2 seconds")
      const busy = yield* Fiber.join(waiting)
      assert.strictEqual(busy.subject, "markOnline")
      assert.include(busy.message, ClusterStore.BUSY)
      // The release waited past the limit and runs once the permit is free.
      assert.isTrue((yield* Fiber.poll(release))._tag === "None")
      yield* Deferred.succeed(hold, undefined)
      yield* Fiber.join(holder)
      assert.strictEqual(yield* Fiber.join(release), "released")
      // The permit the timed-out wait never got is not lost.
      assert.strictEqual(yield* gated("getMachine", Effect.succeed("free")), "free")
    })
  )
})

/** A core on the memory store whose handshake writes and key checks fail while `failing` says so. */
const flakyCore = Effect.gen(function* () {
  const failing = { markOnline: false, authenticate: false }
  const flaky = Layer.effect(
    RelayStore.RelayStore,
    Effect.map(RelayStore.RelayStore, (store) => ({
      ...store,
      markOnline: (id: Parameters<typeof store.markOnline>[0], at: number) =>
        failing.markOnline ? Effect.fail(sqlFailure("markOnline")) : store.markOnline(id, at),
      authenticateKey: (key: Parameters<typeof store.authenticateKey>[0]) =>
        failing.authenticate ? Effect.fail(sqlFailure("authenticateKey")) : store.authenticateKey(key)
    }))
  ).pipe(Layer.provide(RelayStore.layerMemory))
  const context = yield* Layer.build(
    RelayCore.layer({ server: "relay.test:50051" }).pipe(
      Layer.provideMerge(ShareServiceLive.layer),
      Layer.provideMerge(flaky)
    )
  )
  const core = Context.get(context, RelayCore.RelayCore)
  const store = Context.get(context, RelayStore.RelayStore)
  const created = yield* store.createWorkspace(WorkspaceName.make("w"))
  const caller = yield* core.authenticate(created.apiKey)
  const connect = Effect.gen(function* () {
    const toRelay = yield* Queue.unbounded<AgentLink.AgentMessage>()
    const fromRelay = yield* Queue.unbounded<AgentLink.RelayMessage>()
    const fiber = yield* core.connectAgent(caller, Stream.fromQueue(toRelay)).pipe(
      Stream.runForEach((m) => Queue.offer(fromRelay, m)),
      Effect.forkScoped
    )
    return { toRelay, fromRelay, fiber }
  })
  return { failing, connect, store, created }
})

describe("a handshake or heartbeat the store cannot serve", () => {
  it.scoped("the handshake is refused as Unavailable (the agent backs off and retries), not Internal", () =>
    Effect.gen(function* () {
      const { failing, connect } = yield* flakyCore
      failing.markOnline = true
      const agent = yield* connect
      yield* Queue.offer(agent.toRelay, hello("box"))
      const exit = yield* Fiber.await(agent.fiber)
      const failure = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
      if (!(failure instanceof RelayError)) return assert.fail(`expected a RelayError, got ${String(failure)}`)
      assert.strictEqual(failure.reason, "Unavailable")
      assert.include(failure.detail, "markOnline")
      // Once the store is back, the next attempt is welcomed.
      failing.markOnline = false
      const again = yield* connect
      yield* Queue.offer(again.toRelay, hello("box2"))
      assert.strictEqual((yield* Queue.take(again.fromRelay))._tag, "Welcome")
    })
  )

  it.scoped("a heartbeat whose key check fails in the store keeps the stream; a rotated key still ends it", () =>
    Effect.gen(function* () {
      const { failing, connect, store, created } = yield* flakyCore
      const agent = yield* connect
      yield* Queue.offer(agent.toRelay, hello("box"))
      assert.strictEqual((yield* Queue.take(agent.fromRelay))._tag, "Welcome")
      failing.authenticate = true
      yield* Queue.offer(agent.toRelay, { _tag: "Heartbeat", at: 1 })
      const answer = yield* Queue.take(agent.fromRelay)
      assert.deepStrictEqual([answer._tag, answer._tag === "Heartbeat" ? answer.at : -1], ["Heartbeat", 1])
      assert.isTrue((yield* Fiber.poll(agent.fiber))._tag === "None", "the stream is still up")
      // The store answers again, and the key was rotated meanwhile: that verdict ends the stream.
      failing.authenticate = false
      yield* store.rotateKey(created.workspace.name)
      yield* Queue.offer(agent.toRelay, { _tag: "Heartbeat", at: 2 })
      yield* Fiber.join(agent.fiber)
    })
  )
})
