import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as ConnectionGuard from "../../src/internal/connectionGuard.js"
import * as Limits from "../../src/internal/limits.js"
import { RefusalAudit } from "../../src/share/refusalAudit.js"

describe("limits", () => {
  it.effect("an exec request is measured in UTF-8 bytes over argv, env and cwd, and refused past 256 KiB", () =>
    Effect.gen(function* () {
      assert.strictEqual(Limits.execRequestBytes({ argv: ["ü", "ab"], env: { K: "vv" }, cwd: "/x" }), 2 + 2 + 3 + 2)
      const at = { argv: ["x".repeat(Limits.MAX_REQUEST_BYTES)] }
      yield* Limits.checkExecRequest("relay", at)
      const over = yield* Effect.flip(
        Limits.checkExecRequest("relay", { argv: ["x"], env: { BIG: "y".repeat(Limits.MAX_REQUEST_BYTES) } })
      )
      assert.strictEqual(over.reason, "ResourceExhausted")
      assert.include(over.message, "over the relay's limit of 256 KiB; pass large data on stdin instead")
    })
  )

  it.effect("a principal gauge holds a slot for a scope's life and refuses past its max", () =>
    Effect.gen(function* () {
      const gauge = new Limits.PrincipalGauge(2, "streams")
      const a = yield* Scope.make()
      const b = yield* Scope.make()
      yield* Scope.extend(gauge.hold("relay", "w/p", "p"), a)
      yield* Scope.extend(gauge.hold("relay", "w/p", "p"), b)
      // Another principal is not affected.
      yield* Effect.scoped(gauge.hold("relay", "w/q", "q"))
      const refused = yield* Effect.flip(Effect.scoped(gauge.hold("relay", "w/p", "p")))
      assert.strictEqual(refused.detail, "p already has 2 streams open, the relay's limit; close some and try again")
      yield* Scope.close(a, Exit.void)
      yield* Effect.scoped(gauge.hold("relay", "w/p", "p"))
      yield* Scope.close(b, Exit.void)
      assert.strictEqual(gauge.count("w/p"), 0)
    })
  )

  it("connection caps follow the descriptor limit and keep a reserve", () => {
    const small = ConnectionGuard.plan(1024)
    assert.deepStrictEqual([small.http.total, small.grpc.total], [128, 384])
    assert.strictEqual(small.http.perSource, 128)
    const large = ConnectionGuard.plan(20_000)
    assert.deepStrictEqual([large.http.perSource, large.grpc.perSource], [256, 1024])
    assert.strictEqual(large.http.total + large.grpc.total, 20_000 - ConnectionGuard.FD_RESERVE)
  })

  it("--max-connections-per-source replaces the gRPC per-source cap only, and the gRPC total still bounds it", () => {
    const raised = ConnectionGuard.plan(20_000, { grpcPerSource: 10_001 })
    assert.strictEqual(raised.grpc.perSource, 10_001)
    assert.deepStrictEqual(
      [raised.http, raised.grpc.total, raised.grpc.silentForMs],
      [ConnectionGuard.plan(20_000).http, ConnectionGuard.plan(20_000).grpc.total, 10_000]
    )
    assert.strictEqual(ConnectionGuard.plan(20_000, { grpcPerSource: 3 }).grpc.perSource, 3)
    const past = ConnectionGuard.plan(1024, { grpcPerSource: 10_000 })
    assert.strictEqual(past.grpc.perSource, past.grpc.total)
  })

  it("refusals are audited once per link per interval, with the count of the rest, details cut", () => {
    const audit = new RefusalAudit()
    assert.strictEqual(audit.admit("l1", "revoked", 0), "revoked")
    assert.isUndefined(audit.admit("l1", "revoked", 1_000))
    assert.isUndefined(audit.admit("l1", "revoked", 59_999))
    assert.strictEqual(audit.admit("l2", "expired", 2_000), "expired")
    assert.strictEqual(
      audit.admit("l1", "revoked", 60_000),
      "revoked (2 more refusals of this link before this one were not recorded)"
    )
    assert.strictEqual(audit.admit("l3", "x".repeat(1000), 0)?.length, 256)
  })
})
