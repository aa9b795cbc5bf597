import { shareFailure, shareServiceContract } from "@cmdop/domain/testing/ShareServiceContract"
import { MachineId } from "@cmdop/domain/Machine"
import * as ShareTokens from "@cmdop/relay/share/ShareTokens"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { randomUUID } from "node:crypto"
import { fixtureOn, freshFixture, freshStore } from "./fixtures.js"

shareServiceContract("memory", freshFixture("memory"))
shareServiceContract("sqlite", freshFixture("sqlite"))
shareServiceContract("postgres", freshFixture("postgres"))

describe("ShareServiceLive", () => {
  it.scoped("even a token signed with the relay's own key never validates for another machine or workspace", () =>
    Effect.gen(function* () {
      const store = yield* freshStore("memory")
      const fx = yield* fixtureOn(store)
      const a = yield* fx.workspace(2)
      const b = yield* fx.workspace()
      const share = yield* fx.shares.mint({
        creator: { workspaceId: a.workspaceId, principal: "ck_live_abcd", kind: "key" },
        machine: a.machines[0]!,
        ttlSeconds: 3600,
        publicUrl: "http://relay.test"
      })
      const key = Option.getOrThrow(yield* store.currentSigningKey)
      const claims = yield* ShareTokens.verify(share.token, [key], 0)
      // The link's own record is the authority: claims that point elsewhere are refused and audited.
      const elsewhere = FastCheck.constantFrom<Partial<ShareTokens.ShareClaims>>(
        { sub: MachineId.make(a.machines[1]!.id) },
        { sub: MachineId.make(b.machines[0]!.id) },
        { wsid: b.workspaceId },
        { sub: MachineId.make(b.machines[0]!.id), wsid: b.workspaceId },
        { sub: MachineId.make(randomUUID()) },
        { gen: claims.gen + 1 },
        { exp: claims.exp! + 3600 }
      )
      for (const change of FastCheck.sample(elsewhere, { numRuns: 20, seed: 3 })) {
        const forged = yield* ShareTokens.sign(key, { ...claims, ...change })
        yield* shareFailure(fx.shares.validate(forged), "BadSignature")
      }
      // All 20 are refused; the audit keeps one row per link per minute (the rest are counted, or answered from
      // the relay's cache of recent refusals without reaching the audit at all).
      yield* TestClock.adjust("1 minute")
      yield* shareFailure(
        fx.shares.validate(yield* ShareTokens.sign(key, { ...claims, gen: claims.gen + 1 })),
        "BadSignature"
      )
      const link = yield* fx.shares.get(a.workspaceId, share.link.id)
      const denied = link.events.filter((e) => e.kind === "denied")
      assert.strictEqual(denied.length, 2)
      assert.isTrue(denied.every((e) => e.detail.startsWith("this share link was not issued by this relay")))
      assert.strictEqual((yield* fx.shares.validate(share.token)).machineId, a.machines[0]!.id)
    })
  )

  it.scoped("the first signing key is created with the service; rotation keeps the newest current", () =>
    Effect.gen(function* () {
      const store = yield* freshStore("memory")
      assert.deepStrictEqual(yield* store.listSigningKeys, [])
      const fx = yield* fixtureOn(store)
      const [first] = yield* store.listSigningKeys
      assert.strictEqual(first?.algorithm, "HS256")
      // Same millisecond (TestClock stands still): the new key still becomes current, every time.
      for (let i = 0; i < 20; i++) {
        const rotation = yield* fx.shares.rotateSigningKey
        assert.strictEqual(Option.getOrThrow(yield* store.currentSigningKey).kid, rotation.current)
      }
    })
  )
})
