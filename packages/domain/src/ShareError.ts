/**
 * Why a share-link operation failed: a bad TTL at mint, or a token that does not (or no longer) grant access. One
 * family with a `reason`; `message` is written for the guest or creator who sees it, and never holds a token or
 * key material (a link id is not a secret). The gRPC edge maps it to `AccessError`; the `/s/<token>` page maps it
 * to an HTTP status (see `SharePage.statusOf` in the relay).
 */
import * as Schema from "effect/Schema"

export const ShareErrorReason = Schema.Literal(
  /** The requested lifetime is not a duration, is negative, or is over 720 h. */
  "InvalidTtl",
  /** Not a share token at all: wrong shape, bad encoding, unexpected header or claims. */
  "Malformed",
  /** Not signed by this relay (unknown key, wrong signature, unexpected algorithm) or altered. */
  "BadSignature",
  /** Signed by a relay key that has since been retired. */
  "SigningKeyRetired",
  "Expired",
  "Revoked",
  /** The workspace API key was rotated after the link was minted. */
  "KeyRotated",
  /** The link's machine was removed from (or moved out of) its workspace. */
  "MachineGone",
  /** No such link (in this workspace). */
  "NotFound",
  /** The caller may not do this (a guest minting, a machine of another workspace). */
  "NotAllowed",
  /** The relay's store failed; nothing was decided. */
  "Unavailable"
)
export type ShareErrorReason = typeof ShareErrorReason.Type

/** ms since the epoch → `2026-04-26T12:34:56Z` (RFC 3339 UTC, whole seconds). */
export const formatInstant = (ms: number): string => {
  const date = new Date(ms)
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString().replace(/\.\d{3}Z$/, "Z")
}

export class ShareError extends Schema.TaggedError<ShareError>()("ShareError", {
  reason: ShareErrorReason,
  /** The link id, or for `InvalidTtl` the TTL as given. */
  subject: Schema.optional(Schema.String),
  /** `Expired`: when it expired; `Revoked`: when it was revoked (ms since the epoch). */
  at: Schema.optional(Schema.Number),
  /** `InvalidTtl`, `NotAllowed`, `Unavailable` (and `NotFound` of something else than a link): what is wrong. */
  detail: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const link = this.subject === undefined ? "share link" : `share link ${this.subject}`
    switch (this.reason) {
      case "InvalidTtl":
        return `invalid share link TTL ${JSON.stringify(this.subject ?? "")}: ${this.detail ?? "not a duration"}`
      case "Malformed":
        return "this is not a valid share link token; check that the whole link was copied"
      case "BadSignature":
        return "this share link was not issued by this relay, or it was altered; ask for a new link"
      case "SigningKeyRetired":
        return "this share link was signed with a relay key that has since been retired; ask for a new link"
      case "Expired":
        return this.at === undefined ? "share link expired" : `share link expired at ${formatInstant(this.at)}`
      case "Revoked":
        return this.at === undefined ? `${link} was revoked` : `${link} was revoked at ${formatInstant(this.at)}`
      case "KeyRotated":
        return "this share link no longer works: the workspace key was rotated; ask for a new link"
      case "MachineGone":
        return "the machine this share link was for is no longer in its workspace"
      case "NotFound":
        return (
          this.detail ??
          `${link} does not exist in this workspace; "cmdop connect share list" lists the workspace's links`
        )
      case "NotAllowed":
        return this.detail ?? "a share link cannot do this; use a workspace API key"
      case "Unavailable":
        return `the relay could not check share links${this.detail === undefined ? "" : ` (${this.detail})`}; try again`
    }
  }
}
