/**
 * The state changes of device codes, refresh tokens and sign-in links as pure functions of (record, now). Every
 * store layer reads the record, applies one of these and writes the result in one transaction, so memory,
 * SQLite and PostgreSQL decide alike.
 */
import * as Effect from "effect/Effect"
import { DeviceCodeRecord, type UserId } from "./records.js"

/** RFC 8628 §3.5: by how much each `slow_down` raises the polling interval. */
export const SLOW_DOWN_STEP_SECONDS = 5

/**
 * The answer to one poll of the token endpoint with a device code. `reused`: the code was exchanged before (its
 * grant is revoked, as for a replayed authorization code); `issued`: tokens are issued now.
 */
export type PollOutcome =
  "authorization_pending" | "slow_down" | "access_denied" | "expired_token" | "reused" | "issued"

/**
 * One poll at `now`: the outcome and the record as it must be stored afterwards. Expiry wins over everything
 * (an approved code not collected in time is gone); a pending code polled sooner than its interval after the
 * previous poll answers `slow_down` and its interval grows by 5 s for this and every later poll.
 */
export const poll = (
  code: DeviceCodeRecord,
  now: number
): { readonly outcome: PollOutcome; readonly next: DeviceCodeRecord } => {
  const polled = (fields: Partial<DeviceCodeRecord> = {}) =>
    new DeviceCodeRecord({ ...code, ...fields, lastPolledAt: now })
  if (code.status === "consumed") return { outcome: "reused", next: code }
  if (now >= code.expiresAt) return { outcome: "expired_token", next: code }
  switch (code.status) {
    case "denied":
      return { outcome: "access_denied", next: polled() }
    case "approved":
      return { outcome: "issued", next: polled({ status: "consumed" }) }
    case "pending": {
      const tooSoon = code.lastPolledAt !== undefined && now - code.lastPolledAt < code.intervalSeconds * 1000
      return tooSoon
        ? { outcome: "slow_down", next: polled({ intervalSeconds: code.intervalSeconds + SLOW_DOWN_STEP_SECONDS }) }
        : { outcome: "authorization_pending", next: polled() }
    }
  }
}

/** Who approved a code that is being exchanged; approval always records one, so its absence is a defect. */
export const approver = (code: DeviceCodeRecord): Effect.Effect<UserId> =>
  code.userId === undefined ? Effect.dieMessage("an approved device code records no user") : Effect.succeed(code.userId)

/** A refresh token as the store reads it for a rotation. */
export interface RefreshTokenState {
  readonly expiresAt: number
  readonly consumedAt: number | undefined
  readonly grantRevoked: boolean
}

/**
 * One use of a refresh token at `now`. `reused`: it was rotated away before, so someone holds a copy; the whole
 * grant is revoked. `invalid`: expired, or its grant was revoked. `rotate`: issue a new pair, consume this one.
 */
export const refresh = (token: RefreshTokenState, now: number): "rotate" | "reused" | "invalid" => {
  if (token.grantRevoked) return "invalid"
  if (token.consumedAt !== undefined) return "reused"
  return now >= token.expiresAt ? "invalid" : "rotate"
}

/** A sign-in link as the store reads it for redemption. */
export interface SignInLinkState {
  readonly expiresAt: number
  readonly usedAt: number | undefined
}

/** One redemption of a sign-in link at `now`: single use, valid until `expiresAt`. */
export const redeem = (link: SignInLinkState, now: number): "ok" | "used" | "expired" =>
  link.usedAt !== undefined ? "used" : now >= link.expiresAt ? "expired" : "ok"
