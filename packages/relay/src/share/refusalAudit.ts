/**
 * The throttle on audit rows for refused share links: a replayed revoked or expired token must not write one row
 * per attempt. The first refusal of a link in each `AUDIT_INTERVAL_MS` is recorded; later ones in the interval are
 * counted, and the next recorded refusal says how many were not. Details are cut to `MAX_AUDIT_DETAIL` characters.
 */

/** One recorded refusal per link per this many milliseconds. */
export const AUDIT_INTERVAL_MS = 60_000

/** Characters of a refusal's detail kept in the audit row. */
export const MAX_AUDIT_DETAIL = 256

/** Links tracked at once; beyond this, entries whose interval is over are dropped. */
const MAX_TRACKED = 10_000

interface Window {
  readonly start: number
  suppressed: number
}

export class RefusalAudit {
  private readonly windows = new Map<string, Window>()

  /**
   * Whether this refusal of `linkId` at `now` is recorded, and with what detail (`undefined`: counted only).
   */
  admit(linkId: string, detail: string, now: number): string | undefined {
    const open = this.windows.get(linkId)
    if (open !== undefined && now - open.start < AUDIT_INTERVAL_MS) {
      open.suppressed += 1
      return undefined
    }
    if (this.windows.size >= MAX_TRACKED) this.prune(now)
    this.windows.set(linkId, { start: now, suppressed: 0 })
    const before = open?.suppressed ?? 0
    const text = detail.length > MAX_AUDIT_DETAIL ? `${detail.slice(0, MAX_AUDIT_DETAIL - 1)}…` : detail
    return before === 0 ? text : `${text} (${before} more refusals of this link before this one were not recorded)`
  }

  private prune(now: number) {
    for (const [id, w] of this.windows) if (now - w.start >= AUDIT_INTERVAL_MS) this.windows.delete(id)
  }
}
