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
  events: Schema.Array(ShareEvent)
}) {}

/** A freshly minted link: the record, its token (shown once) and its URL. */
export interface MintedShare {
  readonly link: ShareLink
  readonly token: string
  readonly url: string
}
