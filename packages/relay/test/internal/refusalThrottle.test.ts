import { assert, describe, it } from "@effect/vitest"
import { AccessError } from "@cmdop/domain/AccessError"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as Admission from "../../src/internal/admission.js"
import { RefusalThrottle, sourceOfAddress, sourceOfPeer } from "../../src/internal/refusalThrottle.js"

const caller = { workspaceId: "ws_1", workspaceName: "acme", kind: "key", principal: "ck_live_abcd" } as never

describe("refused credentials, per source", () => {
  it("a source is heard until its burst of refusals is spent, then again as its budget refills", () => {
    const t = new RefusalThrottle(3, 2)
    for (let i = 0; i < 3; i++) {
      assert.isUndefined(t.blockedFor("10.0.0.1", 0))
      t.refused("10.0.0.1", 0)
    }
    assert.strictEqual(t.blockedFor("10.0.0.1", 0), 500)
    // Another source is untouched.
    assert.isUndefined(t.blockedFor("10.0.0.2", 0))
    // Two per second come back: one after 500 ms.
    assert.isDefined(t.blockedFor("10.0.0.1", 499))
    assert.isUndefined(t.blockedFor("10.0.0.1", 500))
    t.refused("10.0.0.1", 500)
    assert.strictEqual(t.blockedFor("10.0.0.1", 500), 500)
  })

  it("grpc-js peers name their address without the port", () => {
    assert.strictEqual(sourceOfPeer("ipv4:127.0.0.2:51234"), "127.0.0.2")
    assert.strictEqual(sourceOfPeer("ipv6:[::1]:51234"), "::1")
    assert.strictEqual(sourceOfPeer("unix:/tmp/s"), "unix:/tmp/s")
    // One spelling per address whichever listener saw it: an IPv4 address over an IPv6 socket is its IPv4 form.
    assert.strictEqual(sourceOfPeer("ipv6:[::ffff:127.0.0.2]:51234"), "127.0.0.2")
    assert.deepStrictEqual(
      [sourceOfAddress("::ffff:127.0.0.2"), sourceOfAddress("::1"), sourceOfAddress(undefined)],
      ["127.0.0.2", "::1", "unknown"]
    )
  })

  it.effect("authenticateFrom: refusals spend the budget; then calls are refused unread, others still heard", () =>
    Effect.gen(function* () {
      const admission = Admission.make()
      let reads = 0
      const refuse = Effect.suspend(() => {
        reads += 1
        return Effect.fail(new AccessError({ reason: "Unauthenticated", detail: "share link sl_1 was revoked" }))
      })
      const from = (source: string, authenticate: typeof refuse) =>
        Effect.flip(Admission.authenticateFrom(admission, "relay:50051", source, authenticate))
      for (let i = 0; i < admission.refusals.burst; i++)
        assert.strictEqual((yield* from("127.0.0.2", refuse))._tag, "AccessError")
      const limited = yield* from("127.0.0.2", refuse)
      assert.strictEqual(limited._tag === "RelayError" && limited.reason, "ResourceExhausted")
      assert.include(limited.message, "too many refused credentials from 127.0.0.2")
      assert.strictEqual(reads, admission.refusals.burst, "the limited call never read its credential")
      // Another source, and a good credential from it, are unaffected.
      assert.deepStrictEqual(
        yield* Admission.authenticateFrom(admission, "relay:50051", "127.0.0.3", Effect.succeed(caller)),
        caller
      )
      // A second later the source is heard again (five refusals earned back).
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* from("127.0.0.2", refuse))._tag, "AccessError")
    })
  )
})
