/**
 * The behaviour every `ClusterEvents` layer must have, run once per implementation (memory, PostgreSQL): a
 * subscription starts with `Resync` once it listens, then gets every published event, in order, as does every
 * other subscriber.
 */
import * as ClusterEvents from "@cmdop/relay/cluster/ClusterEvents"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"

/** A running subscription whose events land in a queue, for the life of the scope. */
export const subscribed = Effect.gen(function* () {
  const events = yield* ClusterEvents.ClusterEvents
  const queue = yield* Queue.unbounded<ClusterEvents.ClusterEvent>()
  yield* events.subscribe.pipe(
    Stream.runForEach((e) => Queue.offer(queue, e)),
    Effect.forkScoped
  )
  return queue
})

/** The next event, or a clear failure after 10 s. */
export const next = (queue: Queue.Queue<ClusterEvents.ClusterEvent>, what: string) =>
  Queue.take(queue).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`no ${what}`) }))

export const clusterEventsContract = (name: string, layer: () => Layer.Layer<ClusterEvents.ClusterEvents, unknown>) =>
  describe(`ClusterEvents contract (${name})`, () => {
    it.live(
      "a subscription starts with Resync, then gets what is published, in order, like every other subscriber",
      () =>
        Effect.gen(function* () {
          const events = yield* ClusterEvents.ClusterEvents
          const first = yield* subscribed
          const second = yield* subscribed
          assert.deepStrictEqual(yield* next(first, "Resync"), ClusterEvents.Resync.make({}))
          assert.deepStrictEqual(yield* next(second, "Resync"), ClusterEvents.Resync.make({}))
          const published = [
            ClusterEvents.ShareRevoked.make({ shareId: "sh_1" }),
            ClusterEvents.KeyRetired.make({ workspaceId: "ws_1" }),
            ClusterEvents.AccountChanged.make({ userId: "u_1" })
          ]
          for (const event of published) yield* events.publish(event)
          for (const queue of [first, second])
            assert.deepStrictEqual(
              [yield* next(queue, "event 1"), yield* next(queue, "event 2"), yield* next(queue, "event 3")],
              published
            )
        }).pipe(Effect.scoped, Effect.provide(layer())),
      20_000
    )
  })
