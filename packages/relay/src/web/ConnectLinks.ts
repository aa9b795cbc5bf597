/**
 * The browser-terminal links the cabinet's "Connect" minted, by the web session that minted them, so that signing
 * out ends them at once: each is revoked (its next use is refused; a terminal open through it ends at the agent,
 * processes and all). Removal, demotion and disabling of the person end them anyway, on any relay process
 * (`Authenticator.ts`, `credentialSweep.ts`); this record covers the sign-out, which leaves the person's access as
 * it is. It lives in this relay process: a link (one hour) minted before a restart is left to expire.
 */
import * as Secrets from "@cmdop/accounts/Secrets"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"

/** How long an entry is kept: the lifetime of a Connect link. */
export const LINK_LIFETIME_MS = 3_600_000

export class ConnectLinks extends Context.Tag("@cmdop/relay/web/ConnectLinks")<
  ConnectLinks,
  {
    /** A link was minted in `session`; `revoke` ends it. */
    readonly minted: (session: Redacted.Redacted<string>, revoke: Effect.Effect<void>) => Effect.Effect<void>
    /** `session` signs out: its links are revoked, and forgotten. */
    readonly signedOut: (session: Redacted.Redacted<string>) => Effect.Effect<void>
  }
>() {}

interface Entry {
  readonly revoke: Effect.Effect<void>
  readonly until: number
}

export const make = Effect.sync(() => {
  // By the session id's hash (never the id itself), entries dropped once their link has expired.
  const bySession = new Map<string, Array<Entry>>()
  const prune = (now: number) => {
    for (const [key, entries] of bySession) {
      const live = entries.filter((e) => e.until > now)
      if (live.length === 0) bySession.delete(key)
      else bySession.set(key, live)
    }
  }
  return ConnectLinks.of({
    minted: (session, revoke) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        prune(now)
        const key = Secrets.hashSecret(session)
        bySession.set(key, [...(bySession.get(key) ?? []), { revoke, until: now + LINK_LIFETIME_MS }])
      }),
    signedOut: (session) =>
      Effect.suspend(() => {
        const key = Secrets.hashSecret(session)
        const entries = bySession.get(key) ?? []
        bySession.delete(key)
        return Effect.forEach(entries, (e) => e.revoke, { discard: true })
      })
  })
})
