/**
 * The relay store as a cluster node sees it: online exactly when a live node holds the machine's route, on every
 * node alike; a node's close releases only its own connection; a node's start leaves the others' machines alone.
 */
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as ClusterStore from "@cmdop/relay/cluster/ClusterStore"
import { MachineRoutes, layerMemory as routesMemory } from "@cmdop/relay/cluster/MachineRoutes"
import * as RelayStore from "@cmdop/relay/RelayStore"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { randomBytes, randomUUID } from "node:crypto"

const setup = Effect.gen(function* () {
  const store = yield* RelayStore.RelayStore
  const routes = yield* MachineRoutes
  yield* routes.renewLease({ nodeId: "n1", peerAddress: "a:1", instance: "i1" })
  yield* routes.renewLease({ nodeId: "n2", peerAddress: "b:1", instance: "i2" })
  const n1 = ClusterStore.make(store, routes, "n1")
  const n2 = ClusterStore.make(store, routes, "n2")
  const { workspace } = yield* store.createWorkspace(WorkspaceName.make(`c-${randomBytes(3).toString("hex")}`))
  const machine = yield* store.registerMachine({
    id: RelayStore.MachineRegistration.fields.id.make(randomUUID()),
    workspaceId: workspace.id,
    hostname: "box",
    name: "box",
    os: "linux",
    agentVersion: "0.1.0",
    secretHash: randomBytes(32).toString("hex")
  })
  const onlineOn = (view: RelayStore.RelayStore["Type"]) =>
    Effect.map(view.listMachines(workspace.id), (ms) => ms.map((m) => m.online))
  return { store, routes, n1, n2, machine, onlineOn }
})

const layer = Layer.merge(RelayStore.layerMemory, routesMemory(10_000))

describe("ClusterStore", () => {
  it.effect("a stream accepted on one node shows the machine online on every node, and its close offline", () =>
    Effect.gen(function* () {
      const { n1, n2, machine, onlineOn, routes, store } = yield* setup
      assert.deepStrictEqual(yield* onlineOn(n1), [false])
      yield* n2.markOnline(machine.id, 5)
      assert.deepStrictEqual(yield* onlineOn(n1), [true])
      assert.isTrue((yield* n1.getMachine(machine.id)).online)
      assert.strictEqual(Option.getOrThrow(yield* routes.locate(machine.id)).nodeId, "n2")
      yield* n2.markOffline(machine.id)
      assert.deepStrictEqual(yield* onlineOn(n1), [false])
      assert.isFalse((yield* n2.getMachine(machine.id)).online)
      // The stored flag, which host-side commands read, follows.
      assert.isFalse((yield* store.getMachine(machine.id)).online)
    }).pipe(Effect.provide(layer))
  )

  it.effect("a late close on the old node leaves the agent's newer stream on another node online", () =>
    Effect.gen(function* () {
      const { n1, n2, machine, onlineOn, store } = yield* setup
      yield* n1.markOnline(machine.id, 5)
      yield* n2.markOnline(machine.id, 6)
      yield* n1.markOffline(machine.id)
      assert.deepStrictEqual(yield* onlineOn(n1), [true])
      assert.isTrue((yield* store.getMachine(machine.id)).online, "the stored flag stays while node 2 holds it")
      // A node starting up does not mark the others' machines offline.
      yield* n1.markAllOffline
      assert.deepStrictEqual(yield* onlineOn(n2), [true])
    }).pipe(Effect.provide(layer))
  )

  it.effect("a machine whose node's lease lapsed is offline everywhere", () =>
    Effect.gen(function* () {
      const { n1, n2, machine, onlineOn, routes } = yield* setup
      yield* n2.markOnline(machine.id, 5)
      yield* TestClock.adjust("6 seconds")
      yield* routes.renewLease({ nodeId: "n1", peerAddress: "a:1", instance: "i1" })
      yield* TestClock.adjust("6 seconds")
      assert.deepStrictEqual(yield* onlineOn(n1), [false])
    }).pipe(Effect.provide(layer))
  )
})

describe("ClusterStore, a close racing its own claim", () => {
  it.effect("releases the claim it raced, never leaving a route to a stream that is gone", () =>
    Effect.gen(function* () {
      const { store, machine, onlineOn, routes } = yield* setup
      // A slow database: every claim takes a second.
      const slow = {
        ...routes,
        claim: (...args: Parameters<typeof routes.claim>) =>
          Effect.zipRight(Effect.sleep("1 second"), routes.claim(...args))
      }
      const n1 = ClusterStore.make(store, slow, "n1")
      const first = yield* Effect.fork(n1.markOnline(machine.id, 5))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(first)
      // The next stream's claim is in flight when that stream closes.
      const stream = {}
      const next = yield* Effect.fork(n1.markOnline(machine.id, 6, stream))
      yield* Effect.yieldNow()
      const close = yield* Effect.fork(n1.markOffline(machine.id, stream))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(next)
      yield* Fiber.join(close)
      assert.isTrue(Option.isNone(yield* routes.locate(machine.id)), "no route left to the closed stream")
      assert.deepStrictEqual(yield* onlineOn(n1), [false])
    }).pipe(Effect.provide(layer))
  )
})

describe("ClusterStore, the agent's next stream accepted on the same node before the old one's close is handled", () => {
  it.effect("the old connection's close leaves the new connection's route (it releases only its own epoch)", () =>
    Effect.gen(function* () {
      const { n1, n2, machine, onlineOn, routes, store } = yield* setup
      const [oldStream, newStream] = [{}, {}]
      yield* n1.markOnline(machine.id, 5, oldStream)
      // The old stream left the registry; before its markOffline runs, the agent's next stream is accepted.
      yield* n1.markOnline(machine.id, 6, newStream)
      const current = Option.getOrThrow(yield* routes.locate(machine.id))
      yield* n1.markOffline(machine.id, oldStream)
      assert.deepStrictEqual(Option.getOrThrow(yield* routes.locate(machine.id)), current)
      assert.deepStrictEqual(yield* onlineOn(n2), [true])
      assert.isTrue((yield* store.getMachine(machine.id)).online)
      // The new connection's own close releases it.
      yield* n1.markOffline(machine.id, newStream)
      assert.isTrue(Option.isNone(yield* routes.locate(machine.id)))
      assert.deepStrictEqual(yield* onlineOn(n2), [false])
    }).pipe(Effect.provide(layer))
  )

  it.effect("an old close whose release is in flight while the new stream claims leaves the new route", () =>
    Effect.gen(function* () {
      const { store, machine, onlineOn, routes } = yield* setup
      // The old connection's release is held at the database until the test lets it through.
      const entered = yield* Deferred.make<number>()
      const gate = yield* Deferred.make<void>()
      const gated = {
        ...routes,
        release: (...args: Parameters<typeof routes.release>) =>
          Deferred.succeed(entered, args[2]).pipe(
            Effect.zipRight(Deferred.await(gate)),
            Effect.zipRight(routes.release(...args))
          )
      }
      const n1 = ClusterStore.make(store, gated, "n1")
      const [oldStream, newStream] = [{}, {}]
      yield* n1.markOnline(machine.id, 5, oldStream)
      const oldEpoch = Option.getOrThrow(yield* routes.locate(machine.id)).epoch
      const close = yield* Effect.fork(n1.markOffline(machine.id, oldStream))
      assert.strictEqual(yield* Deferred.await(entered), oldEpoch, "the close releases its own epoch")
      yield* n1.markOnline(machine.id, 6, newStream)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(close)
      const route = Option.getOrThrow(yield* routes.locate(machine.id))
      assert.isAbove(route.epoch, oldEpoch)
      assert.strictEqual(route.nodeId, "n1")
      assert.deepStrictEqual(yield* onlineOn(n1), [true])
      assert.isTrue((yield* store.getMachine(machine.id)).online, "the stored flag follows the live stream")
    }).pipe(Effect.provide(layer))
  )

  it.effect("the new stream's claim waits for the old one still in flight, so the new connection's epoch wins", () =>
    Effect.gen(function* () {
      const { store, machine, onlineOn, routes } = yield* setup
      // The old connection's claim is held at the database; the new one's would run at once.
      const gate = yield* Deferred.make<void>()
      let calls = 0
      const gated = {
        ...routes,
        claim: (...args: Parameters<typeof routes.claim>) =>
          Effect.suspend(() =>
            ++calls === 1 ? Effect.zipRight(Deferred.await(gate), routes.claim(...args)) : routes.claim(...args)
          )
      }
      const n1 = ClusterStore.make(store, gated, "n1")
      const [oldStream, newStream] = [{}, {}]
      const first = yield* Effect.fork(n1.markOnline(machine.id, 5, oldStream))
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(n1.markOnline(machine.id, 6, newStream))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      // The new connection's close releases the route: its epoch is the latest.
      yield* n1.markOffline(machine.id, newStream)
      assert.isTrue(Option.isNone(yield* routes.locate(machine.id)), "no route left to a closed stream")
      assert.deepStrictEqual(yield* onlineOn(n1), [false])
    }).pipe(Effect.provide(layer))
  )
})
