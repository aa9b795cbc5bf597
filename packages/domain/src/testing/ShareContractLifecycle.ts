/**
 * The `ShareService` contract, second half: what ends links from outside (key rotation, machines removed, signing keys), use counts, listing, and hostile tokens.
 */
import { assert, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as TestClock from "effect/TestClock"
import type { MintedShare } from "../ShareLink.js"
import {
  kinds,
  mintFor,
  property,
  refusedAsGarbage,
  type ShareFactory,
  shareFailure,
  setupOf,
  start
} from "./ShareContractSupport.js"

export const lifecycleContract = (factory: ShareFactory) => {
  const setup = setupOf(factory)

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
}
