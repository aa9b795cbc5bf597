/**
 * The cursor of a share-link listing, as callers carry it between pages: the last link's creation time and id,
 * written `<createdAt>.<id>`. Opaque to callers (they pass back what `next` said) but readable when debugging;
 * it holds nothing secret (a link id is not a secret, and a cursor only reaches links of the caller's workspace).
 */
import type { ShareListPosition } from "@cmdop/domain/ShareLink"

/** Links one listing page holds when the caller does not say. */
export const DEFAULT_SHARE_PAGE = 50

/** The most links one listing page may hold: a page stays readable, and cheap to build, however many exist. */
export const MAX_SHARE_PAGE = 500

const shape = /^(\d{1,15})\.([A-Za-z0-9_-]{1,128})$/

export const encode = (position: ShareListPosition): string => `${position.createdAt}.${position.id}`

/** The position a cursor names; `undefined` when it is not one `encode` wrote. */
export const decode = (cursor: string): ShareListPosition | undefined => {
  const match = shape.exec(cursor)
  return match === null ? undefined : { createdAt: Number(match[1]), id: match[2]! }
}
