/**
 * How a share link is shown: its status word and its `--json` shape (the same in `share list` and
 * `share revoke`).
 */
import { formatInstant } from "@cmdop/domain/ShareError"
import type { ShareLink } from "@cmdop/domain/ShareLink"

export const statusOf = (link: ShareLink, now: number) =>
  link.revokedAt !== undefined
    ? "revoked"
    : link.expiresAt !== undefined && link.expiresAt <= now
      ? "expired"
      : link.signingKeyRetired === true
        ? "key retired"
        : "active"

export const view = (link: ShareLink, now: number) => ({
  id: link.id,
  machine_id: link.machineId,
  machine_hostname: link.machineHostname,
  creator: link.creator,
  status: statusOf(link, now),
  created_at: formatInstant(link.createdAt),
  expires_at: link.expiresAt === undefined ? null : formatInstant(link.expiresAt),
  revoked_at: link.revokedAt === undefined ? null : formatInstant(link.revokedAt),
  last_used_at: link.lastUsedAt === undefined ? null : formatInstant(link.lastUsedAt),
  use_count: link.useCount,
  ...(link.sessionId === undefined ? {} : { session_id: link.sessionId }),
  events: link.events.map((e) => ({ kind: e.kind, detail: e.detail, at: formatInstant(e.at) }))
})
