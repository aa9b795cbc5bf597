/**
 * Fixtures of the account store contract: fresh names, hashes, token pairs, pending device codes, and assertions
 * on failures and options. Every test makes its own data, because a SQL layer is shared by every test of a file.
 */
import { WorkspaceId } from "@cmdop/domain/Machine"
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { randomBytes } from "node:crypto"
import { Email } from "../../Email.js"
import type { AccountStoreError } from "../AccountStoreError.js"
import { DeviceCodeRecord, type NewTokenPair } from "../records.js"
import { AccountStore } from "../service.js"

export const suffix = () => randomBytes(5).toString("hex")
export const freshEmail = (label = "user") => Email.make(`${label}-${suffix()}@example.com`)
export const freshWorkspace = () => WorkspaceId.make(`ws_${suffix()}`)
export const freshHash = () => randomBytes(32).toString("hex")
export const HOUR = 3_600_000

export const pair = (now: number): NewTokenPair => ({
  accessHash: freshHash(),
  accessExpiresAt: now + 72 * HOUR,
  refreshHash: freshHash(),
  refreshExpiresAt: now + 720 * HOUR
})

export const pendingCode = (now: number) =>
  new DeviceCodeRecord({
    deviceCodeHash: freshHash(),
    userCodeHash: freshHash(),
    clientId: "cmdop-cli",
    scope: "connect",
    createdAt: now,
    expiresAt: now + 600_000,
    intervalSeconds: 5,
    status: "pending"
  })

/** The failure of `effect`, asserting it has the expected reason. */
export const failure = <A>(effect: Effect.Effect<A, AccountStoreError>, reason: AccountStoreError["reason"]) =>
  Effect.map(Effect.flip(effect), (error) => {
    assert.strictEqual(error._tag, "AccountStoreError")
    assert.strictEqual(error.reason, reason, error.message)
    return error
  })

export const some = <A>(option: Option.Option<A>): A => {
  assert.isTrue(Option.isSome(option), "expected Some, got None")
  return Option.getOrThrow(option)
}

/** A user who is a member of a fresh workspace, and an approved device code collected into a grant. */
export const signedInGrant = Effect.gen(function* () {
  const store = yield* AccountStore
  const user = yield* store.createUser(freshEmail("grant"))
  const workspaceId = freshWorkspace()
  yield* store.putMembership(user.id, workspaceId, "member")
  const code = pendingCode(1_000)
  yield* store.createDeviceCode(code)
  yield* store.decideDeviceCode(code.userCodeHash, 2_000, { approve: true, userId: user.id, workspaceId })
  const tokens = pair(3_000)
  const polled = some(yield* store.pollDeviceCode(code.deviceCodeHash, 3_000, tokens))
  assert.strictEqual(polled.outcome, "issued")
  return { user, workspaceId, code, tokens, grant: polled.grant! }
})
