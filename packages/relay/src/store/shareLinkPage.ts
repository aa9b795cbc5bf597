/**
 * One page of a workspace's share links. Listings are read a page at a time so a workspace with a flood of links
 * (or a flooded audit trail) never has to be loaded whole: the store reads at most `limit` links past the cursor,
 * in listing order (oldest first, then by id), and says where the next page starts.
 */
import type { ShareLinkRecord } from "./records.js"

/** A position in the listing order: the last link of the previous page. */
export interface ShareLinkCursor {
  readonly createdAt: number
  readonly id: string
}

export interface ShareLinkPageQuery {
  /** At most this many links (≥ 1). */
  readonly limit: number
  /** Only links after this position; absent: from the first. */
  readonly after?: ShareLinkCursor
}

export interface ShareLinkPage {
  readonly links: ReadonlyArray<ShareLinkRecord>
  /** Set when more links follow: the position of the last link of this page. */
  readonly next?: ShareLinkCursor
}

/** Whether `link` comes after `cursor` in listing order (the same comparison as `shareLinkOrder`). */
export const isAfter = (link: { readonly createdAt: number; readonly id: string }, cursor: ShareLinkCursor) =>
  link.createdAt > cursor.createdAt || (link.createdAt === cursor.createdAt && link.id > cursor.id)

/** The page of `limit` from links read with one extra (`limit + 1`) to learn whether more follow. */
export const pageOf = <L extends ShareLinkCursor>(
  sorted: ReadonlyArray<L>,
  limit: number
): { readonly links: ReadonlyArray<L>; readonly next?: ShareLinkCursor } => {
  if (sorted.length <= limit) return { links: sorted }
  const links = sorted.slice(0, limit)
  const last = links[links.length - 1]!
  return { links, next: { createdAt: last.createdAt, id: last.id } }
}
