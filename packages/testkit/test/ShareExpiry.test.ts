/**
 * An expired share link is refused, tested with a short clock (TestClock) rather than by waiting an hour: the
 * real relay core and share service on the memory store, a real agent engine attached in-process.
 */
import { assert, describe, it } from "@effect/vitest"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import * as RelayClientInProcess from "@cmdop/relay/RelayClientInProcess"
import * as InProcessAgent from "@cmdop/testkit/InProcessAgent"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Fiber from "effect/Fiber"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { memoryRelay } from "./memoryRelay.js"

describe("share link expiry", () => {
  it.scoped("a link works until its expiry and is refused after it, with the time it expired", () =>
    Effect.gen(function* () {
      // The clock moves by an hour, and `TestClock.adjust` steps through every timer due on the way (heartbeats,
      // sweeps): timers minutes apart instead of seconds keep that to a few hundred steps. The expiry itself has its
      // own timer (`guestExpiry.ts`), whatever the sweeps.
      const { context, store } = yield* memoryRelay({
        server: "test",
        guestSweep: "1 hour",
        credentialSweep: "20 minutes",
        staleAfter: "2 hours"
      })
      const key = Redacted.value((yield* store.createWorkspace(WorkspaceName.make("w"))).apiKey)
      yield* InProcessAgent.attach(key, InProcessAgent.identity({ hostname: "prod-1" }), {
        hostname: "prod-1",
        heartbeatInterval: "20 minutes"
      }).pipe(Effect.provide(context), Effect.provide(ProcessRunner.layer))
      const client = (credential: string) =>
        Effect.provide(RelayClientInProcess.make(Redacted.make(credential)), context)
      const owner = yield* client(key)
      // 1 s asked for: rounded up to a whole hour.
      const minted = yield* owner.createShare("prod-1", 1)
      assert.strictEqual(minted.link.expiresAt! - minted.link.createdAt, 3_600_000)
      const guest = yield* client(minted.token)
      const run = Effect.map(
        Stream.runCollect(guest.exec({ machine: "prod-1", argv: ["echo", "in time"] })),
        (events) => Chunk.toReadonlyArray(events).find((e) => e._tag === "Exit")
      )

      assert.strictEqual((yield* run)?._tag, "Exit")
      yield* TestClock.adjust("59 minutes")
      assert.strictEqual((yield* run)?._tag, "Exit")
      // A command the guest started before the expiry is ended at the expiry itself.
      const long = yield* Effect.fork(Stream.runDrain(guest.exec({ machine: "prod-1", argv: ["sleep", "30"] })))
      yield* Effect.sleep("300 millis").pipe(Effect.withClock(Clock.make()))
      yield* TestClock.adjust("1 minute")
      const cut = yield* Effect.flip(Fiber.join(long))
      assert.strictEqual(cut._tag, "AccessError")
      assert.match(cut.message, /^share link expired at /)
      const refused = yield* Effect.flip(run)
      assert.strictEqual(refused._tag, "AccessError")
      assert.match(refused.message, /^share link expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
      // Expiry is a soft delete: the record stays, with an `expired` event.
      const [link] = (yield* owner.listShares("prod-1")).links
      assert.include(
        link!.events.map((e) => e.kind),
        "expired"
      )
    })
  )
})
