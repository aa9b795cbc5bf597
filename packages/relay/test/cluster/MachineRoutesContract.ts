/**
 * The behaviour every `MachineRoutes` layer must have, run once per implementation (memory, PostgreSQL). Each test
 * uses fresh random node and machine ids, so tests sharing one database never see each other's rows. Lease expiry
 * needs time to pass: `elapse` moves the layer's clock (the `TestClock` for memory, real time for PostgreSQL,
 * whose leases run on the database's clock).
 */
import { MachineId } from "@cmdop/domain/Machine"
import { MachineRoutes, NodeIdInUse } from "@cmdop/relay/cluster/MachineRoutes"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { randomBytes, randomUUID } from "node:crypto"

export interface ContractOptions {
  /** The layer under test, with leases of `leaseMs`. */
  readonly layer: (leaseMs: number) => Layer.Layer<MachineRoutes, unknown>
  /** Lets `ms` pass on the clock the layer judges leases by. */
  readonly elapse: (ms: number) => Effect.Effect<void>
  /** Whether the tests run on real time (`it.live`) or the `TestClock` (`it.effect`). */
  readonly live: boolean
}

const machine = () => MachineId.make(randomUUID())
const nodeId = (label: string) => `${label}-${randomBytes(4).toString("hex")}`

/** Two registered live nodes, `a` and `b`. */
const twoNodes = Effect.gen(function* () {
  const routes = yield* MachineRoutes
  const a = { nodeId: nodeId("a"), peerAddress: "10.0.0.1:50052", instance: randomUUID() }
  const b = { nodeId: nodeId("b"), peerAddress: "10.0.0.2:50052", instance: randomUUID() }
  yield* routes.renewLease(a)
  yield* routes.renewLease(b)
  return { routes, a, b }
})

const LONG_LEASE = 60_000

export const machineRoutesContract = (name: string, options: ContractOptions) =>
  describe(`MachineRoutes contract (${name})`, () => {
    const test = (title: string, leaseMs: number, body: Effect.Effect<void, unknown, MachineRoutes>) =>
      (options.live ? it.live : it.effect)(title, () => Effect.provide(body, options.layer(leaseMs)), 20_000)

    test(
      "a renewed lease makes the node live, with its peer address; renewal returns the live nodes by id",
      LONG_LEASE,
      Effect.gen(function* () {
        const { routes, a, b } = yield* twoNodes
        const live = yield* routes.renewLease({ ...a, peerAddress: "10.0.0.9:50052", clientAddress: "10.0.0.9:50051" })
        const mine = live.filter((n) => n.nodeId === a.nodeId || n.nodeId === b.nodeId)
        assert.deepStrictEqual(
          mine.map((n) => [n.nodeId, n.peerAddress, n.clientAddress]),
          [
            [a.nodeId, "10.0.0.9:50052", "10.0.0.9:50051"],
            [b.nodeId, b.peerAddress, ""]
          ]
        )
        const ids = (yield* routes.liveNodes).map((n) => n.nodeId)
        assert.deepStrictEqual(
          ids,
          [...ids].sort((x, y) => x.localeCompare(y))
        )
        assert.includeMembers(ids, [a.nodeId, b.nodeId])
        assert.isTrue(mine.every((n) => Number.isFinite(n.renewedAt) && n.renewedAt >= 0))
      })
    )

    test(
      "a lease keeps the fingerprint of its node's secret it was renewed with; none recorded reads as empty",
      LONG_LEASE,
      Effect.gen(function* () {
        const { routes, a, b } = yield* twoNodes
        yield* routes.renewLease({ ...a, secretFingerprint: "f1" })
        const mine = (yield* routes.liveNodes).filter((n) => n.nodeId === a.nodeId || n.nodeId === b.nodeId)
        assert.deepStrictEqual(
          mine.map((n) => [n.nodeId, n.secretFingerprint]),
          [
            [a.nodeId, "f1"],
            [b.nodeId, ""]
          ]
        )
      })
    )

    test(
      "a claim routes the machine to its node; each claim gets a greater epoch and the latest one wins",
      LONG_LEASE,
      Effect.gen(function* () {
        const { routes, a, b } = yield* twoNodes
        const m = machine()
        assert.isTrue(Option.isNone(yield* routes.locate(m)))
        const first = yield* routes.claim(m, a.nodeId)
        assert.deepStrictEqual(Option.getOrThrow(yield* routes.locate(m)), {
          machineId: m,
          nodeId: a.nodeId,
          peerAddress: a.peerAddress,
          epoch: first
        })
        const second = yield* routes.claim(m, b.nodeId)
        assert.isAbove(second, first)
        assert.strictEqual(Option.getOrThrow(yield* routes.locate(m)).nodeId, b.nodeId)
      })
    )

    test(
      "a late release (an older epoch, or another node) never erases the newer route",
      LONG_LEASE,
      Effect.gen(function* () {
        const { routes, a, b } = yield* twoNodes
        const m = machine()
        const old = yield* routes.claim(m, a.nodeId)
        const current = yield* routes.claim(m, b.nodeId)
        yield* routes.release(m, a.nodeId, old)
        yield* routes.release(m, a.nodeId, current)
        yield* routes.release(m, b.nodeId, old)
        assert.deepStrictEqual(Option.getOrThrow(yield* routes.locate(m)).epoch, current)
        yield* routes.release(m, b.nodeId, current)
        assert.isTrue(Option.isNone(yield* routes.locate(m)))
      })
    )

    test(
      "releaseNode (a node stopping) removes every route of that node in one call, and no other node's",
      LONG_LEASE,
      Effect.gen(function* () {
        const { routes, a, b } = yield* twoNodes
        const [m1, m2, m3] = [machine(), machine(), machine()]
        yield* routes.claim(m1, a.nodeId)
        yield* routes.claim(m2, a.nodeId)
        yield* routes.claim(m3, a.nodeId)
        // m3's agent is already back through node b: its newer route is b's and stays.
        const moved = yield* routes.claim(m3, b.nodeId)
        yield* routes.releaseNode(a.nodeId)
        const live = yield* routes.locateMany([m1, m2, m3])
        assert.deepStrictEqual([...live.keys()], [m3])
        assert.strictEqual(live.get(m3)?.epoch, moved)
        assert.strictEqual(live.get(m3)?.nodeId, b.nodeId)
      })
    )

    test(
      "epochs keep growing across releases, so a reconnection never reuses one",
      LONG_LEASE,
      Effect.gen(function* () {
        const { routes, a } = yield* twoNodes
        const m = machine()
        const first = yield* routes.claim(m, a.nodeId)
        yield* routes.release(m, a.nodeId, first)
        const again = yield* routes.claim(m, a.nodeId)
        assert.isAbove(again, first)
        assert.strictEqual(Option.getOrThrow(yield* routes.locate(m)).epoch, again)
      })
    )

    test(
      "concurrent claims of one machine get distinct epochs and the greatest holds the route",
      LONG_LEASE,
      Effect.gen(function* () {
        const { routes, a, b } = yield* twoNodes
        const m = machine()
        const epochs = yield* Effect.all(
          Array.from({ length: 8 }, (_, i) => routes.claim(m, i % 2 === 0 ? a.nodeId : b.nodeId)),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(new Set(epochs).size, epochs.length)
        assert.strictEqual(Option.getOrThrow(yield* routes.locate(m)).epoch, Math.max(...epochs))
      })
    )

    test(
      "a machine routed to a node that never took a lease has no live route",
      LONG_LEASE,
      Effect.gen(function* () {
        const routes = yield* MachineRoutes
        const m = machine()
        yield* routes.claim(m, nodeId("ghost"))
        assert.isTrue(Option.isNone(yield* routes.locate(m)))
        assert.strictEqual((yield* routes.locateMany([m])).size, 0)
      })
    )

    test(
      "locateMany returns the live routes of the machines asked for, and nothing for the rest",
      LONG_LEASE,
      Effect.gen(function* () {
        const { routes, a, b } = yield* twoNodes
        const [m1, m2, m3] = [machine(), machine(), machine()]
        const e1 = yield* routes.claim(m1, a.nodeId)
        const e2 = yield* routes.claim(m2, b.nodeId)
        const e3 = yield* routes.claim(m3, b.nodeId)
        yield* routes.release(m3, b.nodeId, e3)
        const found = yield* routes.locateMany([m1, m2, m3, machine()])
        assert.deepStrictEqual(
          [...found.values()].map((r) => [r.machineId, r.nodeId, r.peerAddress, r.epoch]).sort(),
          [
            [m1, a.nodeId, a.peerAddress, e1],
            [m2, b.nodeId, b.peerAddress, e2]
          ].sort()
        )
        assert.strictEqual((yield* routes.locateMany([])).size, 0)
      })
    )

    test(
      "dropping a lease removes the node and every route it held, and no other node's",
      LONG_LEASE,
      Effect.gen(function* () {
        const { routes, a, b } = yield* twoNodes
        const [m1, m2] = [machine(), machine()]
        yield* routes.claim(m1, a.nodeId)
        yield* routes.claim(m2, b.nodeId)
        yield* routes.dropLease(a)
        assert.isFalse((yield* routes.liveNodes).some((n) => n.nodeId === a.nodeId))
        assert.isTrue(Option.isNone(yield* routes.locate(m1)))
        // Coming back does not resurrect what it held before.
        yield* routes.renewLease(a)
        assert.isTrue(Option.isNone(yield* routes.locate(m1)))
        assert.strictEqual(Option.getOrThrow(yield* routes.locate(m2)).nodeId, b.nodeId)
      })
    )

    test(
      "a lease not renewed in time lapses: the node is dead to the others, its routes with it",
      1_000,
      Effect.gen(function* () {
        const { routes, a, b } = yield* twoNodes
        const m = machine()
        yield* routes.claim(m, a.nodeId)
        yield* options.elapse(600)
        yield* routes.renewLease(b)
        assert.isTrue(Option.isSome(yield* routes.locate(m)), "still live within the lease")
        yield* options.elapse(600)
        const live = (yield* routes.liveNodes).map((n) => n.nodeId)
        assert.notInclude(live, a.nodeId)
        assert.include(live, b.nodeId)
        assert.isTrue(Option.isNone(yield* routes.locate(m)))
        // A node that renews late (a pause, a slow database) is live again with the routes it still holds.
        yield* routes.renewLease(a)
        assert.strictEqual(Option.getOrThrow(yield* routes.locate(m)).nodeId, a.nodeId)
      })
    )

    test(
      "a node id whose lease is live under another instance is refused, at any address, and nothing changes",
      LONG_LEASE,
      Effect.gen(function* () {
        const { routes, a } = yield* twoNodes
        const m = machine()
        const epoch = yield* routes.claim(m, a.nodeId)
        for (const peerAddress of ["10.0.0.66:50052", a.peerAddress]) {
          const refused = yield* Effect.flip(routes.renewLease({ ...a, peerAddress, instance: randomUUID() }))
          assert.instanceOf(refused, NodeIdInUse)
          assert.strictEqual(refused.nodeId, a.nodeId)
          assert.strictEqual(refused.holderAddress, a.peerAddress)
          assert.include(
            refused.message,
            `node id ${a.nodeId} is already in use by a live relay node at ${a.peerAddress}`
          )
        }
        assert.deepStrictEqual(Option.getOrThrow(yield* routes.locate(m)), {
          machineId: m,
          nodeId: a.nodeId,
          peerAddress: a.peerAddress,
          epoch
        })
        // Its own instance renews as before; an intruder's drop gives up nothing.
        yield* routes.renewLease(a)
        yield* routes.dropLease({ nodeId: a.nodeId, instance: randomUUID() })
        assert.isTrue(Option.isSome(yield* routes.locate(m)))
      })
    )

    test(
      "once the lease lapses a new run takes the id over, without the routes the earlier run left",
      1_000,
      Effect.gen(function* () {
        const { routes, a } = yield* twoNodes
        const m = machine()
        yield* routes.claim(m, a.nodeId)
        yield* options.elapse(1_200)
        const restarted = { ...a, instance: randomUUID() }
        const live = yield* routes.renewLease(restarted)
        assert.include(
          live.map((n) => n.nodeId),
          a.nodeId
        )
        assert.isTrue(Option.isNone(yield* routes.locate(m)), "the earlier run's stream is gone")
        // The earlier run, back from a pause, can neither renew nor drop the new run's lease.
        assert.instanceOf(yield* Effect.flip(routes.renewLease(a)), NodeIdInUse)
        yield* routes.dropLease(a)
        const epoch = yield* routes.claim(m, a.nodeId)
        assert.strictEqual(Option.getOrThrow(yield* routes.locate(m)).epoch, epoch)
      })
    )
  })
