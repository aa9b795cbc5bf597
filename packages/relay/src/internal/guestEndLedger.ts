/**
 * How many sessions this relay ended lately for each share link, whatever ended them (a revocation here, the
 * cluster event of one made on another node, a sweep). In a cluster the node that revokes a link may not hold its
 * machine: it then asks the node that does (`PeerService.EndGuestSessions`), which ends what is still running and
 * answers with this count, taken once — the cluster event may have ended them a moment before the question came.
 */

/** A count is kept this long: the question comes right after the revocation, the event within about a second. */
const KEEP_MS = 60_000

/** Links remembered at most (one entry per link with guests ended in the last minute). */
const MAX_LINKS = 10_000

export class GuestEndLedger {
  private readonly ended = new Map<string, { count: number; at: number }>()

  /** `count` more sessions of `shareId` ended at `now`. */
  add(shareId: string, count: number, now: number): void {
    if (count === 0) return
    const entry = this.ended.get(shareId)
    if (entry !== undefined && now - entry.at < KEEP_MS) {
      entry.count += count
      entry.at = now
      return
    }
    if (this.ended.size >= MAX_LINKS) this.prune(now)
    this.ended.set(shareId, { count, at: now })
  }

  /** The sessions of `shareId` ended in the last minute and not yet taken; forgets them. */
  take(shareId: string, now: number): number {
    const entry = this.ended.get(shareId)
    this.ended.delete(shareId)
    return entry !== undefined && now - entry.at < KEEP_MS ? entry.count : 0
  }

  private prune(now: number): void {
    for (const [id, entry] of this.ended) if (now - entry.at >= KEEP_MS) this.ended.delete(id)
    // Still full: a minute of more links than this with guests ended; the oldest go (a Map keeps insertion order).
    for (const id of this.ended.keys()) {
      if (this.ended.size < MAX_LINKS) break
      this.ended.delete(id)
    }
  }
}
