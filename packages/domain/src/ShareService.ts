/**
 * The `ShareService` tag: minting share links, validating their tokens on every call, the per-link audit trail,
 * revocation, and the rotation of the keys tokens are signed with. The relay implements it over its store
 * (`@cmdop/relay/share/ShareServiceLive`, in memory too); every implementation passes
 * `testing/ShareServiceContract.ts`. Time is read from `Clock`, so `TestClock` governs expiry.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { ShareError } from "./ShareError.js"
import type { MintedShare, ShareLink, ShareListPosition } from "./ShareLink.js"

/** Who mints a link. A guest (a share token) may not: `mint` fails with `NotAllowed`. */
export interface ShareCreator {
  readonly workspaceId: string
  /** Non-secret: an API key's prefix, a user's email. Stored as the link's `creator`. */
  readonly principal: string
  readonly kind: "key" | "user" | "guest"
}

/** The machine a link is for (already resolved by the caller in the creator's workspace). */
export interface ShareMachine {
  readonly id: string
  readonly hostname: string
  readonly workspaceId: string
}

export interface MintInput {
  readonly creator: ShareCreator
  readonly machine: ShareMachine
  /** Requested lifetime in seconds: rounded UP to whole hours, 0 = never expires, at most 720 h. */
  readonly ttlSeconds: number
  /** The relay's public base URL; the link's URL is `<publicUrl>/s/<token>`. */
  readonly publicUrl: string
  /** Set: the link reaches this one live interactive session of the machine only (pair debugging). */
  readonly sessionId?: string
}

/** What a valid token grants: one machine of one workspace. */
export interface ShareGrant {
  readonly linkId: string
  readonly workspaceId: string
  readonly workspaceName: string
  readonly machineId: string
  readonly machineHostname: string
  /** ms since the epoch; absent: never expires. */
  readonly expiresAt?: number
  /** The creator's principal. */
  readonly creator: string
  /** Set: the link reaches this one interactive session only. */
  readonly sessionId?: string
}

/** The signing keys after a rotation: the new current one, and the one it replaced (still valid until retired). */
export interface SigningKeyRotation {
  readonly current: string
  readonly previous?: string
}

export class ShareService extends Context.Tag("@cmdop/domain/ShareService")<
  ShareService,
  {
    /**
     * Mints a link for one machine of the creator's workspace and records `created`. The token is in the answer
     * only; the store keeps the record. Fails with `InvalidTtl`, `NotAllowed` (a guest, or a machine of another
     * workspace), `MachineGone` (the machine is not, or no longer, registered there), `Unavailable`.
     */
    readonly mint: (input: MintInput) => Effect.Effect<MintedShare, ShareError>
    /**
     * Checks a token, every time: shape, algorithm and signature, signing key not retired, expiry, the record
     * (present, not revoked, same claims), the workspace key generation, the machine still in the workspace.
     * A known link that fails gets a `denied` event saying why, and `expired` once when first seen expired.
     * Never dies on garbage: anything that is not a valid token is `Malformed` or `BadSignature`.
     */
    readonly validate: (token: string) => Effect.Effect<ShareGrant, ShareError>
    /**
     * Whether a link, by id (no token at hand: a guest's session that outlived its connection, or was adopted
     * after a relay restart), would still validate: not revoked, not expired, signing key not retired, key
     * generation unchanged, machine still there. Records nothing. `NotFound` for an unknown id.
     */
    readonly check: (linkId: string) => Effect.Effect<ShareGrant, ShareError>
    /**
     * A guest opened a session through the link: counts it, sets `lastUsedAt`, records `used` with `detail`; done
     * when it is written (the relay's writes of a burst share transactions). A store failure, or a use beyond what
     * may wait to be written, is logged, not raised, so it never breaks the session it reports.
     */
    readonly recordUse: (linkId: string, detail: string) => Effect.Effect<void>
    /**
     * The workspace's links (of one machine when `machineId` is given), oldest first, with their events; a link
     * whose signing key was retired has `signingKeyRetired`. Every link: callers' listings use `listPage`.
     */
    readonly list: (workspaceId: string, machineId?: string) => Effect.Effect<ReadonlyArray<ShareLink>, ShareError>
    /**
     * A page of what `list` returns: the `limit` links after `after` (oldest first, then by id), and `next` when
     * more follow. Only the page's links are read, so a workspace with a flood of links lists as fast as any.
     */
    readonly listPage: (
      workspaceId: string,
      machineId: string | undefined,
      page: { readonly limit: number; readonly after?: ShareListPosition }
    ) => Effect.Effect<{ readonly links: ReadonlyArray<ShareLink>; readonly next?: ShareListPosition }, ShareError>
    /** One link of the workspace. `NotFound` for an unknown id or another workspace's link. */
    readonly get: (workspaceId: string, linkId: string) => Effect.Effect<ShareLink, ShareError>
    /**
     * Revokes a link of the workspace (its token stops validating at once) and records `revoked`. Revoking a
     * revoked link changes nothing and returns it with `alreadyRevoked`. `NotFound` for an unknown id or another workspace's link.
     */
    readonly revoke: (workspaceId: string, linkId: string) => Effect.Effect<ShareLink, ShareError>
    /**
     * A new signing key becomes current (new tokens are signed with it); older keys keep validating the tokens
     * they signed until retired.
     */
    readonly rotateSigningKey: Effect.Effect<SigningKeyRotation, ShareError>
    /**
     * Retires a signing key: every token it signed stops validating (`SigningKeyRetired`). Retiring the current
     * key makes the next mint use (or create) another. `NotFound` for an unknown kid.
     */
    readonly retireSigningKey: (kid: string) => Effect.Effect<void, ShareError>
  }
>() {}
