/**
 * Refused credentials, rate-limited per source address. Each source has a budget of refusals (a token bucket:
 * `REFUSAL_BURST`, refilled at `REFUSALS_PER_SECOND`); while it is spent, every call from that source is refused at
 * once, before its credential is looked at — no token parsing, no cache, no store. So one address replaying a
 * revoked link (or guessing keys) costs the relay a map lookup per call, and every other address and workspace is
 * untouched. A source that stops being refused earns its budget back within `REFUSAL_BURST / REFUSALS_PER_SECOND`
 * seconds. The budget is generous enough for a person mistyping a key, or a test suite checking refusals.
 * One throttle serves every edge of a relay — gRPC calls, the share page `/s/<token>` and the browser terminal's
 * `/s/<token>/ws` — so a source cannot get a fresh budget by switching from one to another.
 */

/** Refusals a source may collect in a burst before its calls are refused unread. */
export const REFUSAL_BURST = 30

/** Refusals per second a source earns back. */
export const REFUSALS_PER_SECOND = 5

/** Sources tracked at once; beyond this, the ones whose budget is full again are forgotten first. */
const MAX_SOURCES = 10_000

interface Bucket {
  tokens: number
  at: number
}

export class RefusalThrottle {
  private readonly buckets = new Map<string, Bucket>()

  constructor(
    readonly burst = REFUSAL_BURST,
    readonly perSecond = REFUSALS_PER_SECOND
  ) {}

  private level(bucket: Bucket, now: number): number {
    return Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond)
  }

  /** Milliseconds until `source` may be heard again; `undefined` when it may now. */
  blockedFor(source: string, now: number): number | undefined {
    const bucket = this.buckets.get(source)
    if (bucket === undefined) return undefined
    const tokens = this.level(bucket, now)
    return tokens >= 1 ? undefined : Math.ceil(((1 - tokens) / this.perSecond) * 1000)
  }

  /** `source` was refused at `now`: one from its budget. */
  refused(source: string, now: number): void {
    const bucket = this.buckets.get(source)
    if (bucket === undefined && this.buckets.size >= MAX_SOURCES) this.prune(now)
    const tokens = bucket === undefined ? this.burst : this.level(bucket, now)
    this.buckets.set(source, { tokens: Math.max(0, tokens - 1), at: now })
  }

  private prune(now: number) {
    for (const [source, bucket] of this.buckets) if (this.level(bucket, now) >= this.burst) this.buckets.delete(source)
    // Every source is mid-burst: forget the oldest (the map keeps insertion order).
    if (this.buckets.size >= MAX_SOURCES) this.buckets.delete(this.buckets.keys().next().value!)
  }
}

/**
 * One spelling per address, whichever listener saw it: an IPv4 address reached over an IPv6 socket
 * (`::ffff:127.0.0.2`) is its IPv4 form, so a source shares one budget across gRPC, the share page and the browser
 * terminal.
 */
export const sourceOfAddress = (address: string | undefined): string => {
  if (address === undefined || address === "") return "unknown"
  return address.toLowerCase().startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address
}

/** The address part of a grpc-js peer (`ipv4:127.0.0.1:51234`, `ipv6:[::1]:51234`): the source to throttle. */
export const sourceOfPeer = (peer: string): string => {
  if (!/^ipv[46]:/.test(peer)) return peer
  const bare = peer.replace(/^ipv[46]:/, "")
  const v6 = /^\[([^\]]+)\]/.exec(bare)
  if (v6 !== null) return sourceOfAddress(v6[1]!)
  const colon = bare.lastIndexOf(":")
  return sourceOfAddress(colon > 0 ? bare.slice(0, colon) : bare)
}
