/**
 * Share links as callers see them: one link, one machine, a lifetime in whole hours (or none), an audit trail.
 * The token itself exists only in the answer to the call that minted it; the relay stores the record, never the
 * token.
 */
import * as Schema from "effect/Schema"

export const ShareEventKind = Schema.Literal("created", "used", "denied", "expired", "revoked")
export type ShareEventKind = typeof ShareEventKind.Type

export class ShareEvent extends Schema.Class<ShareEvent>("ShareEvent")({
  kind: ShareEventKind,
  detail: Schema.String,
  /** ms since the epoch */
  at: Schema.Number
}) {}

export class ShareLink extends Schema.Class<ShareLink>("ShareLink")({
  id: Schema.String,
  workspaceId: Schema.String,
  machineId: Schema.String,
  machineHostname: Schema.String,
  /** Non-secret principal of the creator (key prefix, user). */
  creator: Schema.String,
  createdAt: Schema.Number,
  /** absent: never expires */
  expiresAt: Schema.optional(Schema.Number),
  revokedAt: Schema.optional(Schema.Number),
  lastUsedAt: Schema.optional(Schema.Number),
  useCount: Schema.Number,
  events: Schema.Array(ShareEvent),
  /** Set: the link reaches this one interactive session only (pair debugging), never a new shell or a command. */
  sessionId: Schema.optional(Schema.NonEmptyString),
  /** The id of the relay key that signed the link's token (not secret: it is in the token's header). */
  signingKid: Schema.optional(Schema.NonEmptyString),
  /** Set in listings: the key that signed the token was retired, so the link no longer works. */
  signingKeyRetired: Schema.optional(Schema.Literal(true)),
  /** Set in the answer to a revoke: the link was already revoked before this call (nothing changed). */
  alreadyRevoked: Schema.optional(Schema.Literal(true)),
  /**
   * Set in the answer to a revoke: how many of the guest's sessions were ended on the machine. Absent from it when
   * the relay node answering could not count them: another node of its cluster holds the machine, and ends them.
   */
  sessionsEnded: Schema.optional(Schema.NonNegativeInt.pipe(Schema.lessThanOrEqualTo(0xffff_ffff)))
}) {}

/** A freshly minted link: the record, its token (shown once) and its URL. */
export interface MintedShare {
  readonly link: ShareLink
  readonly token: string
  readonly url: string
}

/** Where a listing of share links stands: the last link of a page (oldest first, then by id). */
export interface ShareListPosition {
  readonly createdAt: number
  readonly id: string
}

/** Which page of share links to list. */
export interface ShareListPage {
  /** At most this many links; absent: the relay's default page size. */
  readonly limit?: number
  /** The `next` cursor of the previous page; absent: the first page. */
  readonly after?: string
}

/** One page of a workspace's share links; `next` (an opaque cursor) is set when more follow. */
export interface SharePage {
  readonly links: ReadonlyArray<ShareLink>
  readonly next?: string
}
