import * as ApiKey from "@cmdop/domain/ApiKey"
import { relayClientContract, type World } from "@cmdop/domain/testing/RelayClientContract"
import * as LoopbackRelay from "@cmdop/testkit/LoopbackRelay"
import { afterAll } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"

// The live twin: a real relay on loopback (SQLite file), real agent daemons dialing it over gRPC.
const build = Effect.gen(function* () {
  const relay = yield* LoopbackRelay.make()
  const keyA = yield* relay.createWorkspace("team-a")
  const keyB = yield* relay.createWorkspace("team-b")
  yield* Effect.forEach(["web-1", "web-2", "db-1"], (h) => relay.startAgent(keyA, h))
  const old = yield* relay.startAgent(keyA, "old-1")
  yield* relay.startAgent(keyB, "b-box")
  yield* relay.waitOnline(keyA, ["web-1", "web-2", "db-1", "old-1"])
  yield* relay.waitOnline(keyB, ["b-box"])
  // old-1's daemon stops; the relay marks it offline once it sees the stream close (one loopback round trip later).
  yield* Fiber.interrupt(old.fiber)
  yield* relay.waitOffline(keyA, ["old-1"])
  return {
    a: yield* relay.client(keyA),
    b: yield* relay.client(keyB),
    stranger: yield* relay.client(Redacted.value(ApiKey.generate())),
    workspaceA: "team-a",
    workspaceB: "team-b"
  }
})

// One world for the whole file: no test of the contract changes it (no agent stopped, no key rotated; every
// command a test starts ends with the test's scope), so each test sees the same world a fresh one would be, and
// the relay and its five daemons start once instead of once per test. Closed after the last test.
const scope = Effect.runSync(Scope.make())
let shared: Promise<World> | undefined
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

relayClientContract("gRPC over loopback", () =>
  Effect.promise(() => (shared ??= Effect.runPromise(Scope.extend(build, scope))))
)
