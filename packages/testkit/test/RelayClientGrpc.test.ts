import * as ApiKey from "@cmdop/domain/ApiKey"
import { relayClientContract } from "@cmdop/domain/testing/RelayClientContract"
import * as LoopbackRelay from "@cmdop/testkit/LoopbackRelay"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"

// The live twin: a real relay on loopback (SQLite file), real agent daemons dialing it over gRPC.
relayClientContract("gRPC over loopback", () =>
  Effect.gen(function* () {
    const relay = yield* LoopbackRelay.make()
    const keyA = yield* relay.createWorkspace("team-a")
    const keyB = yield* relay.createWorkspace("team-b")
    yield* Effect.forEach(["web-1", "web-2", "db-1"], (h) => relay.startAgent(keyA, h))
    const old = yield* relay.startAgent(keyA, "old-1")
    yield* relay.startAgent(keyB, "b-box")
    yield* relay.waitOnline(keyA, ["web-1", "web-2", "db-1", "old-1"])
    yield* relay.waitOnline(keyB, ["b-box"])
    // old-1's daemon stops: the relay sees its stream close and marks it offline at once.
    yield* Fiber.interrupt(old.fiber)
    return {
      a: yield* relay.client(keyA),
      b: yield* relay.client(keyB),
      stranger: yield* relay.client(Redacted.value(ApiKey.generate())),
      workspaceA: "team-a",
      workspaceB: "team-b"
    }
  })
)
