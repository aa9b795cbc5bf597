/**
 * The contract every `ShareService` passes (the relay's over each store layer). Call it once per implementation
 * with a factory that builds a fresh service with a way to make workspaces and machines and to change them
 * behind the service's back. Every test runs under `TestClock`: expiry is decided by the clock alone.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { formatInstant, type ShareError } from "../ShareError.js"
import type { MintedShare, ShareLink } from "../ShareLink.js"
import type { ShareCreator, ShareMachine, ShareService } from "../ShareService.js"
import * as ShareTtl from "../ShareTtl.js"

/** A workspace the fixture made, with its machines. */
export interface FixtureWorkspace {
  readonly workspaceId: string
  readonly workspaceName: string
  readonly machines: ReadonlyArray<ShareMachine>
}

export interface ShareFixture {
  readonly shares: ShareService["Type"]
  /** A new workspace with `machines` (default 1) machines of its own. */
  readonly workspace: (machines?: number) => Effect.Effect<FixtureWorkspace>
  /** Rotates the workspace's API key (its key generation grows by one). */
  readonly rotateWorkspaceKey: (workspaceId: string) => Effect.Effect<void>
  /** Removes the machine from the relay. */
  readonly removeMachine: (machineId: string) => Effect.Effect<void>
}

export type ShareFactory = Effect.Effect<ShareFixture, never, Scope.Scope>

const hour = 3_600_000
/** A realistic start time (a whole second), so messages show real dates. */
const start = Date.parse("2026-04-25T12:34:56Z")
const publicUrl = "https://relay.example.test/"

const creatorOf = (ws: FixtureWorkspace, kind: ShareCreator["kind"] = "key"): ShareCreator => ({
  workspaceId: ws.workspaceId,
  principal: kind === "guest" ? "share sl_guest" : "ck_live_abcd",
  kind
})

/** The failure of `effect`, asserting it is a `ShareError` with `reason` (never a defect). */
export const shareFailure = <A>(effect: Effect.Effect<A, ShareError>, reason: ShareError["reason"]) =>
  Effect.map(Effect.exit(effect), (exit) => {
    assert.isTrue(Exit.isFailure(exit), `expected ${reason}, got a success`)
    const cause = (exit as Exit.Failure<A, ShareError>).cause
    assert.isTrue(Cause.isFailType(cause), `expected a ShareError, got ${Cause.pretty(cause)}`)
    const error = (cause as Cause.Fail<ShareError>).error
    assert.strictEqual(error._tag, "ShareError")
    assert.strictEqual(error.reason, reason, error.message)
    return error
  })

/** Asserts `token` is refused as garbage (`Malformed` or `BadSignature`), as a typed failure. */
export const refusedAsGarbage = (shares: ShareService["Type"], token: string) =>
  Effect.map(Effect.exit(shares.validate(token)), (exit) => {
    if (Exit.isSuccess(exit)) assert.fail(`accepted a bad token: ${JSON.stringify(token)}`)
    const cause = (exit as Exit.Failure<unknown, ShareError>).cause
    assert.isTrue(Cause.isFailType(cause), `not a typed failure for ${JSON.stringify(token)}: ${Cause.pretty(cause)}`)
    const reason = (cause as Cause.Fail<ShareError>).error.reason
    assert.include(["Malformed", "BadSignature"], reason, JSON.stringify(token))
  })

const kinds = (link: ShareLink) => link.events.map((e) => e.kind)

/** Runs a fast-check property whose body is an Effect, on the calling test's runtime (its `TestClock`). */
const property = <A, E>(arbitrary: FastCheck.Arbitrary<A>, body: (a: A) => Effect.Effect<void, E>, numRuns: number) =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) =>
    Effect.promise(() =>
      FastCheck.assert(
        FastCheck.asyncProperty(arbitrary, (a) => Runtime.runPromise(runtime)(body(a))),
        { numRuns }
      )
    )
  )

export const shareServiceContract = (label: string, factory: ShareFactory) =>
  describe(`ShareService contract: ${label}`, () => {
    const setup = Effect.zipLeft(factory, TestClock.setTime(start))
    const mintFor = (fx: ShareFixture, ws: FixtureWorkspace, ttlSeconds: number, machine = ws.machines[0]!) =>
      fx.shares.mint({ creator: creatorOf(ws), machine, ttlSeconds, publicUrl })

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

    it.scoped("rotating the workspace key kills every link minted under the old one", () =>
      Effect.gen(function* () {
        const fx = yield* setup
        const ws = yield* fx.workspace(2)
        const other = yield* fx.workspace()
        const old1 = yield* mintFor(fx, ws, 3600)
        const old2 = yield* mintFor(fx, ws, 0, ws.machines[1]!)
        const unrelated = yield* mintFor(fx, other, 3600)
        yield* fx.rotateWorkspaceKey(ws.workspaceId)
        for (const share of [old1, old2]) {
          const error = yield* shareFailure(fx.shares.validate(share.token), "KeyRotated")
          assert.include(error.message, "the workspace key was rotated; ask for a new link")
        }
        yield* fx.shares.validate(unrelated.token)
        yield* shareFailure(fx.shares.check(old1.link.id), "KeyRotated")
        yield* fx.shares.check(unrelated.link.id)
        const fresh = yield* mintFor(fx, ws, 3600)
        yield* fx.shares.validate(fresh.token)
        assert.deepStrictEqual(kinds(yield* fx.shares.get(ws.workspaceId, old1.link.id)), ["created", "denied"])
      })
    )

    it.scoped("a machine removed from the relay: its links stop with MachineGone", () =>
      Effect.gen(function* () {
        const fx = yield* setup
        const ws = yield* fx.workspace(2)
        const gone = yield* mintFor(fx, ws, 3600)
        const kept = yield* mintFor(fx, ws, 3600, ws.machines[1]!)
        yield* fx.removeMachine(ws.machines[0]!.id)
        yield* shareFailure(fx.shares.validate(gone.token), "MachineGone")
        yield* fx.shares.validate(kept.token)
        // The record stays for audit, with the hostname it was minted for.
        const link = yield* fx.shares.get(ws.workspaceId, gone.link.id)
        assert.strictEqual(link.machineHostname, ws.machines[0]!.hostname)
        assert.deepStrictEqual(kinds(link), ["created", "denied"])
      })
    )

    it.scoped("recordUse counts sessions opened through a link", () =>
      Effect.gen(function* () {
        const fx = yield* setup
        const ws = yield* fx.workspace()
        const share = yield* mintFor(fx, ws, 3600)
        yield* TestClock.adjust(1000)
        yield* fx.shares.recordUse(share.link.id, "exec uptime")
        yield* TestClock.adjust(1000)
        yield* fx.shares.recordUse(share.link.id, "attach (new session)")
        const link = yield* fx.shares.get(ws.workspaceId, share.link.id)
        assert.strictEqual(link.useCount, 2)
        assert.strictEqual(link.lastUsedAt, start + 2000)
        assert.deepStrictEqual(
          link.events.map((e) => [e.kind, e.detail, e.at]),
          [
            ["created", link.events[0]!.detail, start],
            ["used", "exec uptime", start + 1000],
            ["used", "attach (new session)", start + 2000]
          ]
        )
        // An unknown link is not an error for the session that reports it.
        yield* fx.shares.recordUse("sl_000000000000000000000000", "exec")
      })
    )

    it.scoped("list and get are scoped to the workspace, and to a machine when asked", () =>
      Effect.gen(function* () {
        const fx = yield* setup
        const a = yield* fx.workspace(2)
        const b = yield* fx.workspace()
        const a1 = yield* mintFor(fx, a, 3600)
        yield* TestClock.adjust(1)
        const a2 = yield* mintFor(fx, a, 3600, a.machines[1]!)
        const b1 = yield* mintFor(fx, b, 3600)
        assert.deepStrictEqual(
          (yield* fx.shares.list(a.workspaceId)).map((l) => l.id),
          [a1.link.id, a2.link.id]
        )
        assert.deepStrictEqual(
          (yield* fx.shares.list(a.workspaceId, a.machines[1]!.id)).map((l) => l.id),
          [a2.link.id]
        )
        assert.deepStrictEqual(
          (yield* fx.shares.list(b.workspaceId)).map((l) => l.id),
          [b1.link.id]
        )
        assert.deepStrictEqual(yield* fx.shares.list(a.workspaceId, b.machines[0]!.id), [])
        assert.deepStrictEqual(yield* fx.shares.get(a.workspaceId, a1.link.id), a1.link)
        yield* shareFailure(fx.shares.get(b.workspaceId, a1.link.id), "NotFound")
        yield* shareFailure(fx.shares.get(a.workspaceId, "sl_000000000000000000000000"), "NotFound")
      })
    )

    it.scoped("signing keys: a rotated-out key keeps validating its tokens until retired", () =>
      Effect.gen(function* () {
        const fx = yield* setup
        const ws = yield* fx.workspace()
        const before = yield* mintFor(fx, ws, 3600)
        const rotation = yield* fx.shares.rotateSigningKey
        assert.isDefined(rotation.previous)
        assert.notStrictEqual(rotation.current, rotation.previous)
        const after = yield* mintFor(fx, ws, 3600)
        yield* fx.shares.validate(before.token)
        yield* fx.shares.validate(after.token)

        assert.isUndefined(
          (yield* fx.shares.list(ws.workspaceId)).find((l) => l.id === before.link.id)?.signingKeyRetired
        )
        yield* fx.shares.retireSigningKey(rotation.previous!)
        // Listed as no longer working; `check` by id agrees with the token's validation.
        const listed = yield* fx.shares.list(ws.workspaceId)
        assert.isTrue(listed.find((l) => l.id === before.link.id)?.signingKeyRetired)
        assert.isUndefined(listed.find((l) => l.id === after.link.id)?.signingKeyRetired)
        yield* shareFailure(fx.shares.check(before.link.id), "SigningKeyRetired")
        yield* fx.shares.check(after.link.id)
        const error = yield* shareFailure(fx.shares.validate(before.token), "SigningKeyRetired")
        assert.include(error.message, "ask for a new link")
        assert.deepStrictEqual(kinds(yield* fx.shares.get(ws.workspaceId, before.link.id)), ["created", "denied"])
        yield* fx.shares.validate(after.token)

        // Retiring the current key too: the next mint signs with a new one.
        yield* fx.shares.retireSigningKey(rotation.current)
        yield* shareFailure(fx.shares.validate(after.token), "SigningKeyRetired")
        const fresh = yield* mintFor(fx, ws, 3600)
        yield* fx.shares.validate(fresh.token)
        yield* shareFailure(fx.shares.retireSigningKey("sk_missing"), "NotFound")
      })
    )

    it.scoped("garbage, altered and spliced tokens never validate and never die", () =>
      Effect.gen(function* () {
        const fx = yield* setup
        const ws = yield* fx.workspace()
        const share: MintedShare = yield* mintFor(fx, ws, 3600)
        const token = share.token
        for (const bad of ["", " ", ".", "..", "a.b.c", "eyJ.eyJ.x", token + "x", token.slice(0, -1), ` ${token}`]) {
          yield* refusedAsGarbage(fx.shares, bad)
        }
        // Every character of a genuine token replaced by another one.
        const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        for (let i = 0; i < token.length; i++) {
          const at = alphabet.indexOf(token[i]!)
          // The low bits (which a lenient base64 decoder may ignore at the end of a part) and a high one.
          for (const step of [1, 2, 32]) {
            const replacement = token[i] === "." ? alphabet[step]! : alphabet[at ^ step]!
            yield* refusedAsGarbage(fx.shares, token.slice(0, i) + replacement + token.slice(i + 1))
          }
        }
        yield* property(
          FastCheck.oneof(
            FastCheck.string({ maxLength: 400 }),
            FastCheck.tuple(
              FastCheck.base64String({ maxLength: 200 }),
              FastCheck.base64String({ maxLength: 200 }),
              FastCheck.base64String({ maxLength: 60 })
            ).map((parts) => parts.join(".").replace(/\+/g, "-").replace(/\//g, "_").replace(/=/g, ""))
          ),
          (garbage) => refusedAsGarbage(fx.shares, garbage),
          200
        )
        // None of that touched the link's trail.
        assert.deepStrictEqual(kinds(yield* fx.shares.get(ws.workspaceId, share.link.id)), ["created"])
      })
    )
  })
