/**
 * The `ShareService` contract, first half: minting, validation, expiry, revocation and session-scoped links.
 */
import { assert, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as TestClock from "effect/TestClock"
import { formatInstant } from "../ShareError.js"
import * as ShareTtl from "../ShareTtl.js"
import {
  creatorOf,
  hour,
  kinds,
  mintFor,
  property,
  publicUrl,
  refusedAsGarbage,
  type ShareFactory,
  shareFailure,
  setupOf,
  start
} from "./ShareContractSupport.js"

export const mintAndValidateContract = (factory: ShareFactory) => {
  const setup = setupOf(factory)

  it.scoped("mint: a link for one machine, its lifetime rounded up to whole hours, audited as created", () =>
    Effect.gen(function* () {
      const fx = yield* setup
      const ws = yield* fx.workspace()
      const machine = ws.machines[0]!
      const minted = yield* mintFor(fx, ws, 90 * 60)
      assert.strictEqual(minted.url, `https://relay.example.test/s/${minted.token}`)
      assert.isTrue(minted.token.length > 0)
      const link = minted.link
      assert.strictEqual(link.workspaceId, ws.workspaceId)
      assert.strictEqual(link.machineId, machine.id)
      assert.strictEqual(link.machineHostname, machine.hostname)
      assert.strictEqual(link.creator, "ck_live_abcd")
      assert.strictEqual(link.createdAt, start)
      assert.strictEqual(link.expiresAt, start + 2 * hour)
      assert.strictEqual(link.useCount, 0)
      assert.isUndefined(link.revokedAt)
      assert.isUndefined(link.lastUsedAt)
      assert.deepStrictEqual(kinds(link), ["created"])
      assert.strictEqual(link.events[0]!.at, start)

      assert.strictEqual((yield* mintFor(fx, ws, 1)).link.expiresAt, start + hour)
      assert.strictEqual((yield* mintFor(fx, ws, 3600)).link.expiresAt, start + hour)
      assert.strictEqual((yield* mintFor(fx, ws, 720 * 3600)).link.expiresAt, start + 720 * hour)
      assert.isUndefined((yield* mintFor(fx, ws, 0)).link.expiresAt)
      assert.strictEqual((yield* mintFor(fx, ws, ShareTtl.defaultSeconds)).link.expiresAt, start + 24 * hour)

      // Every link has its own id and token; the service never hands the token out again.
      const listed = yield* fx.shares.list(ws.workspaceId)
      assert.strictEqual(listed.length, 6)
      assert.strictEqual(new Set(listed.map((l) => l.id)).size, 6)
      assert.notInclude(JSON.stringify(listed), minted.token)
      assert.notInclude(JSON.stringify(listed), minted.token.split(".")[2]!)
    })
  )

  it.scoped("mint: a lifetime over 720 h, negative or not a number is InvalidTtl", () =>
    Effect.gen(function* () {
      const fx = yield* setup
      const ws = yield* fx.workspace()
      for (const ttl of [720 * 3600 + 1, 10_000 * 3600, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        const error = yield* shareFailure(mintFor(fx, ws, ttl), "InvalidTtl")
        assert.include(error.message, "TTL")
      }
      assert.strictEqual((yield* fx.shares.list(ws.workspaceId)).length, 0)
    })
  )

  it.scoped("mint: only a workspace credential, and only for a machine of its own workspace", () =>
    Effect.gen(function* () {
      const fx = yield* setup
      const ws = yield* fx.workspace()
      const other = yield* fx.workspace()
      const guest = yield* shareFailure(
        fx.shares.mint({ creator: creatorOf(ws, "guest"), machine: ws.machines[0]!, ttlSeconds: 3600, publicUrl }),
        "NotAllowed"
      )
      assert.include(guest.message, "share link cannot mint")
      yield* shareFailure(
        fx.shares.mint({ creator: creatorOf(ws), machine: other.machines[0]!, ttlSeconds: 3600, publicUrl }),
        "NotAllowed"
      )
      // A machine record claiming the creator's workspace does not help: the service checks the store.
      yield* shareFailure(
        fx.shares.mint({
          creator: creatorOf(ws),
          machine: { ...other.machines[0]!, workspaceId: ws.workspaceId },
          ttlSeconds: 3600,
          publicUrl
        }),
        "MachineGone"
      )
      yield* fx.removeMachine(ws.machines[0]!.id)
      yield* shareFailure(mintFor(fx, ws, 3600), "MachineGone")
      assert.deepStrictEqual(yield* fx.shares.list(ws.workspaceId), [])
      assert.deepStrictEqual(yield* fx.shares.list(other.workspaceId), [])
    })
  )

  it.scoped("validate: a token grants its own machine of its own workspace, nothing else", () =>
    Effect.gen(function* () {
      const fx = yield* setup
      const a = yield* fx.workspace(2)
      const b = yield* fx.workspace()
      const minted = [
        [a, a.machines[0]!, yield* mintFor(fx, a, 3600)],
        [a, a.machines[1]!, yield* mintFor(fx, a, 0, a.machines[1]!)],
        [b, b.machines[0]!, yield* mintFor(fx, b, 7200)]
      ] as const
      for (const [ws, machine, share] of minted) {
        const grant = yield* fx.shares.validate(share.token)
        assert.deepStrictEqual(grant, {
          linkId: share.link.id,
          workspaceId: ws.workspaceId,
          workspaceName: ws.workspaceName,
          machineId: machine.id,
          machineHostname: machine.hostname,
          creator: "ck_live_abcd",
          ...(share.link.expiresAt === undefined ? {} : { expiresAt: share.link.expiresAt })
        })
      }
      // Parts of two genuine tokens do not make a third.
      const [, , one] = minted[0]
      const [, , two] = minted[2]
      const [h1, p1] = one.token.split(".")
      const [, p2, s2] = two.token.split(".")
      yield* refusedAsGarbage(fx.shares, `${h1}.${p1}.${s2}`)
      yield* refusedAsGarbage(fx.shares, `${h1}.${p2}.${one.token.split(".")[2]}`)
    })
  )

  it.scoped("validate: a token is valid until its expiry and never after (any lifetime, any instant)", () =>
    Effect.gen(function* () {
      const fx = yield* setup
      const ws = yield* fx.workspace()
      yield* property(
        FastCheck.record({
          ttlSeconds: FastCheck.integer({ min: 1, max: ShareTtl.maxSeconds }),
          before: FastCheck.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          after: FastCheck.integer({ min: 0, max: 400 * 24 * hour })
        }),
        ({ after, before, ttlSeconds }) =>
          Effect.gen(function* () {
            const share = yield* mintFor(fx, ws, ttlSeconds)
            const expiresAt = share.link.expiresAt!
            const now = share.link.createdAt
            assert.strictEqual(expiresAt - Math.floor(now / 1000) * 1000, ShareTtl.hoursOf(ttlSeconds) * hour)
            yield* TestClock.adjust(Math.floor(before * (expiresAt - now)))
            assert.strictEqual((yield* fx.shares.validate(share.token)).linkId, share.link.id)
            yield* TestClock.setTime(expiresAt - 1)
            yield* fx.shares.validate(share.token)
            yield* TestClock.setTime(expiresAt + after)
            const error = yield* shareFailure(fx.shares.validate(share.token), "Expired")
            assert.strictEqual(error.message, `share link expired at ${formatInstant(expiresAt)}`)
            assert.strictEqual(error.subject, share.link.id)
          }),
        15
      )
      // A link that never expires is still valid a century later.
      const forever = yield* mintFor(fx, ws, 0)
      yield* TestClock.adjust(100 * 365 * 24 * hour)
      assert.isUndefined((yield* fx.shares.validate(forever.token)).expiresAt)
    })
  )

  it.scoped("expiry is a soft delete: the record stays, `expired` is recorded once, refusals once a minute", () =>
    Effect.gen(function* () {
      const fx = yield* setup
      const ws = yield* fx.workspace()
      const share = yield* mintFor(fx, ws, 3600)
      yield* fx.shares.validate(share.token)
      yield* TestClock.adjust(2 * hour)
      // Every refusal is refused; a replayed dead token is recorded once per link per minute, not per attempt.
      for (let i = 0; i < 3; i++) yield* shareFailure(fx.shares.validate(share.token), "Expired")
      yield* TestClock.adjust(60_000)
      yield* shareFailure(fx.shares.validate(share.token), "Expired")
      const link = yield* fx.shares.get(ws.workspaceId, share.link.id)
      assert.deepStrictEqual(kinds(link), ["created", "expired", "denied", "denied"])
      const expired = link.events.find((e) => e.kind === "expired")!
      assert.strictEqual(expired.at, share.link.expiresAt)
      const denied = link.events.filter((e) => e.kind === "denied")
      assert.isTrue(denied.every((e) => e.detail.startsWith(`share link expired at ${formatInstant(start + hour)}`)))
      assert.deepStrictEqual(
        (yield* fx.shares.list(ws.workspaceId)).map((l) => l.id),
        [share.link.id]
      )
    })
  )

  it.scoped("listing notices an expiry nobody tried: `expired` once, in time order", () =>
    Effect.gen(function* () {
      const fx = yield* setup
      const ws = yield* fx.workspace()
      const share = yield* mintFor(fx, ws, 3600)
      yield* TestClock.adjust(5 * hour)
      const [listed] = yield* fx.shares.list(ws.workspaceId)
      assert.deepStrictEqual(kinds(listed!), ["created", "expired"])
      assert.deepStrictEqual(kinds(yield* fx.shares.get(ws.workspaceId, share.link.id)), ["created", "expired"])
      yield* shareFailure(fx.shares.validate(share.token), "Expired")
      assert.deepStrictEqual(kinds((yield* fx.shares.list(ws.workspaceId))[0]!), ["created", "expired", "denied"])
    })
  )

  it.scoped("revoke: the token stops at once; revoking again changes nothing; audited", () =>
    Effect.gen(function* () {
      const fx = yield* setup
      const ws = yield* fx.workspace()
      const other = yield* fx.workspace()
      const share = yield* mintFor(fx, ws, 24 * 3600)
      const kept = yield* mintFor(fx, ws, 24 * 3600)
      yield* fx.shares.validate(share.token)

      yield* shareFailure(fx.shares.revoke(other.workspaceId, share.link.id), "NotFound")
      yield* shareFailure(fx.shares.revoke(ws.workspaceId, "sl_000000000000000000000000"), "NotFound")
      yield* fx.shares.validate(share.token)

      yield* TestClock.adjust(60_000)
      const revoked = yield* fx.shares.revoke(ws.workspaceId, share.link.id)
      assert.strictEqual(revoked.revokedAt, start + 60_000)
      const error = yield* shareFailure(fx.shares.validate(share.token), "Revoked")
      assert.include(error.message, `share link ${share.link.id} was revoked at ${formatInstant(start + 60_000)}`)

      yield* TestClock.adjust(60_000)
      const again = yield* fx.shares.revoke(ws.workspaceId, share.link.id)
      assert.strictEqual(again.revokedAt, start + 60_000)
      // Said so: a second revoke is not a silent success.
      assert.isUndefined(revoked.alreadyRevoked)
      assert.isTrue(again.alreadyRevoked)
      // `check` (by id, no token) sees the revocation too, and records nothing.
      yield* shareFailure(fx.shares.check(share.link.id), "Revoked")
      assert.strictEqual((yield* fx.shares.check(kept.link.id)).linkId, kept.link.id)
      yield* shareFailure(fx.shares.check("sl_000000000000000000000000"), "NotFound")
      assert.strictEqual(kinds(yield* fx.shares.get(ws.workspaceId, share.link.id)).length, 3)
      assert.deepStrictEqual(kinds(yield* fx.shares.get(ws.workspaceId, share.link.id)), [
        "created",
        "revoked",
        "denied"
      ])
      // The other link of the machine is untouched.
      assert.strictEqual((yield* fx.shares.validate(kept.token)).linkId, kept.link.id)
    })
  )

  it.scoped("a link for one session keeps its session in the record and in every grant", () =>
    Effect.gen(function* () {
      const fx = yield* setup
      const ws = yield* fx.workspace()
      const whole = yield* mintFor(fx, ws, 3600)
      const one = yield* fx.shares.mint({
        creator: creatorOf(ws),
        machine: ws.machines[0]!,
        ttlSeconds: 3600,
        publicUrl,
        sessionId: "pty-1"
      })
      assert.isUndefined(whole.link.sessionId)
      assert.strictEqual(one.link.sessionId, "pty-1")
      assert.isUndefined((yield* fx.shares.validate(whole.token)).sessionId)
      assert.strictEqual((yield* fx.shares.validate(one.token)).sessionId, "pty-1")
      assert.strictEqual((yield* fx.shares.check(one.link.id)).sessionId, "pty-1")
      assert.strictEqual((yield* fx.shares.get(ws.workspaceId, one.link.id)).sessionId, "pty-1")
    })
  )
}
