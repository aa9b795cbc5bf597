/**
 * The writer of guests' share-link uses (`share/useWrites.ts`) over the memory store, with the store's batch write
 * held at a latch or failing on purpose: uses queued meanwhile go in the next transactions; beyond the queue's
 * capacity they are dropped, counted, and logged once (not once per use); a store failure is tried again; and
 * closing the scope writes what is still queued.
 */
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as UseWrites from "@cmdop/relay/share/useWrites"
import { eventually } from "@cmdop/test-helpers/Eventually"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { randomBytes, randomUUID } from "node:crypto"

/** A memory store with one link, whose batch writes wait for `open` and are counted; and the lines logged. */
const setup = Effect.gen(function* () {
  const store = Context.get(yield* Layer.build(RelayStore.layerMemory), RelayStore.RelayStore)
  const { workspace } = yield* store.createWorkspace(WorkspaceName.make(`w-${randomBytes(4).toString("hex")}`))
  const machine = yield* store.registerMachine({
    id: RelayStore.MachineRegistration.fields.id.make(randomUUID()),
    workspaceId: workspace.id,
    hostname: "box",
    name: "box",
    os: "linux",
    agentVersion: "0.1.0",
    secretHash: randomBytes(32).toString("hex")
  })
  const link = yield* store.createShareLink(
    {
      id: `sl_${randomBytes(12).toString("hex")}`,
      workspaceId: workspace.id,
      machineId: machine.id,
      machineHostname: machine.hostname,
      creator: "ck_live_abcd",
      createdAt: 0,
      keyGeneration: 1
    },
    "created"
  )
  const open = yield* Deferred.make<void>()
  const batches: Array<number> = []
  const calls = { count: 0 }
  let failures = 0
  const held = RelayStore.RelayStore.of({
    ...store,
    recordShareUses: (uses) =>
      Effect.zipRight(
        Effect.zipRight(
          Effect.sync(() => calls.count++),
          Deferred.await(open)
        ),
        Effect.suspend(() => {
          if (failures > 0) {
            failures--
            return Effect.fail(new RelayStore.RelayStoreError({ reason: "Sql", subject: "x", detail: "pool timeout" }))
          }
          batches.push(uses.length)
          return store.recordShareUses(uses)
        })
      )
  })
  const logged: Array<string> = []
  const logger = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => logged.push(`${logLevel.label} ${[message].flat().join(" ")}`))
  )
  const useCount = Effect.map(store.getShareLink(link.id), (l) => Option.getOrThrow(l).useCount)
  return {
    store: held,
    linkId: link.id,
    open: Deferred.succeed(open, undefined),
    batches,
    /** Whether the writer has called the store (and waits at the latch unless it is open). */
    atStore: Effect.sync(() => (calls.count > 0 ? true : undefined)),
    failNext: (n: number) => void (failures = n),
    logged,
    logger,
    useCount
  }
})

describe("share-link use writes", () => {
  it.scopedLive("beyond the queue's capacity, uses are dropped, counted and logged once; the rest are written", () =>
    Effect.gen(function* () {
      const t = yield* setup
      yield* Effect.gen(function* () {
        const writes = yield* UseWrites.make(t.store, { capacity: 5, batch: 2 })
        const use = (i: number) => writes.record({ linkId: t.linkId, at: i, detail: `exec n${i}` })
        // The first is taken at once and waits at the store; of 25 more, five fill the queue and twenty find it full.
        const first = yield* Effect.fork(use(0))
        yield* eventually("the writer at the store", t.atStore)
        const burst = yield* Effect.forEach(
          Array.from({ length: 25 }, (_, i) => 1 + i),
          (i) => Effect.fork(use(i))
        )
        // Dropped uses do not wait: their calls go on.
        const waiting = yield* eventually(
          "twenty calls done",
          Effect.sync(() => {
            const left = burst.filter((f) => f.unsafePoll() === null)
            return left.length === 5 ? left : undefined
          })
        )
        assert.deepStrictEqual(t.logged, [
          "WARN share link audit: 5 uses wait to be written; further uses are not recorded until there is room"
        ])
        assert.strictEqual(yield* t.useCount, 0)
        yield* t.open
        yield* Fiber.join(first)
        yield* Effect.forEach(waiting, Fiber.join, { discard: true })
        assert.strictEqual(yield* t.useCount, 6)
        // One, then what piled up meanwhile, two at a time.
        assert.deepStrictEqual(t.batches, [1, 2, 2, 1])
        yield* eventually(
          "the drop count logged",
          Effect.sync(() => (t.logged.length === 2 ? true : undefined))
        )
        assert.deepStrictEqual(t.logged, [
          "WARN share link audit: 5 uses wait to be written; further uses are not recorded until there is room",
          "WARN share link audit: 20 uses were not recorded while the queue was full"
        ])
      }).pipe(Effect.provide(t.logger))
    })
  )

  it.scopedLive("a batch the store refuses is tried again; closing the scope writes what is still queued", () =>
    Effect.gen(function* () {
      const t = yield* setup
      yield* Effect.gen(function* () {
        const scope = yield* Scope.make(ExecutionStrategy.sequential)
        const writes = yield* UseWrites.make(t.store, { batch: 100 }).pipe(Scope.extend(scope))
        const use = (i: number) => writes.record({ linkId: t.linkId, at: i, detail: `exec n${i}` })
        t.failNext(2)
        const first = yield* Effect.fork(use(0))
        yield* eventually("the writer at the store", t.atStore)
        const queued = yield* Effect.forEach([1, 2, 3], (i) => Effect.fork(use(i)))
        yield* Effect.yieldNow()
        // Closing waits for the batch at the store (failing twice, then written), then writes the three queued.
        const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
        yield* t.open
        yield* Fiber.join(closing)
        yield* Fiber.join(first)
        yield* Effect.forEach(queued, Fiber.join, { discard: true })
        assert.strictEqual(yield* t.useCount, 4)
        assert.deepStrictEqual(t.batches, [1, 3])
        assert.deepStrictEqual(t.logged, [])
        // Once closed, a use is written on its own.
        yield* use(4)
        assert.strictEqual(yield* t.useCount, 5)
      }).pipe(Effect.provide(t.logger))
    })
  )
})
