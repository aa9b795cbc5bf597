/**
 * The recent-routes cache of forwarding: a route found for a name is reused for its time to live only, per caller
 * view (workspace, and a guest's one machine), and forgotten with every name of its machine.
 */
import type { Caller } from "@cmdop/relay/Authenticator"
import type { Route } from "@cmdop/relay/cluster/MachineRoutes"
import * as ForwardRoutes from "@cmdop/relay/cluster/forwardRoutes"
import type { MachineId } from "@cmdop/domain/Machine"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"

const caller = (workspaceId: string, machineId?: string): Caller => ({
  workspaceId,
  workspaceName: workspaceId,
  kind: machineId === undefined ? "key" : "guest",
  principal: "p",
  credential: Redacted.make("c"),
  ...(machineId === undefined ? {} : { machineId })
})
const route = (machineId: string, nodeId = "node-2"): Route => ({
  machineId: machineId as MachineId,
  nodeId,
  peerAddress: "127.0.0.1:1",
  epoch: 1
})

describe("forwardRoutes", () => {
  it.effect("a route is reused for its time to live, then looked up again", () =>
    Effect.gen(function* () {
      const cache = ForwardRoutes.make(2_000)
      const acme = caller("acme")
      yield* cache.set(acme, "box", route("m1"))
      assert.strictEqual((yield* cache.get(acme, "box"))?.machineId, "m1")
      yield* TestClock.adjust("1999 millis")
      assert.isDefined(yield* cache.get(acme, "box"))
      yield* TestClock.adjust("1 millis")
      assert.isUndefined(yield* cache.get(acme, "box"))
    })
  )

  it.effect("names are per caller view: another workspace, or a guest of one machine, looks up its own", () =>
    Effect.gen(function* () {
      const cache = ForwardRoutes.make()
      yield* cache.set(caller("acme"), "box", route("m1"))
      assert.isUndefined(yield* cache.get(caller("beta"), "box"))
      assert.isUndefined(yield* cache.get(caller("acme", "m9"), "box"))
      assert.isDefined(yield* cache.get(caller("acme"), "box"))
    })
  )

  it.effect("forgetting a machine drops every name that led to it, and only those", () =>
    Effect.gen(function* () {
      const cache = ForwardRoutes.make()
      const acme = caller("acme")
      yield* cache.set(acme, "box", route("m1"))
      yield* cache.set(acme, "m1", route("m1"))
      yield* cache.set(acme, "other", route("m2"))
      cache.forget("m1")
      assert.isUndefined(yield* cache.get(acme, "box"))
      assert.isUndefined(yield* cache.get(acme, "m1"))
      assert.strictEqual((yield* cache.get(acme, "other"))?.machineId, "m2")
    })
  )
})
