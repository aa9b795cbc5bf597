/**
 * The OAuth session a `cmdop login` leaves behind, as a credential source for the resolver (its last step). The
 * layers here are `layerEmpty` (no session) and the in-memory ones (`layerMemory`, `layerStatic`) for tests and
 * embedding; the `token.json`-backed layer that refreshes the access token is `@cmdop/node/OAuthSessionLive`.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"

export interface Session {
  /** A fresh access token (the layer refreshes it when it is about to expire). */
  readonly accessToken: Redacted.Redacted<string>
  /** The relay the session came from. */
  readonly server: string
  /** The user's active workspace on the relay, if known. */
  readonly workspace?: string
  /** The signed-in person (their email), if known. */
  readonly user?: string
}

export class OAuthSession extends Context.Tag("@cmdop/domain/OAuthSession")<
  OAuthSession,
  {
    readonly current: Effect.Effect<Option.Option<Session>>
    /**
     * Refreshes the session now, whatever its expiry says (a caller does this once after the relay answered
     * UNAUTHENTICATED), and returns it; none when there is no session or the relay refused. Absent: the layer
     * cannot refresh (the in-memory ones).
     */
    readonly refresh?: Effect.Effect<Option.Option<Session>>
  }
>() {}

/** No OAuth session: the resolver falls through to its final error. */
export const layerEmpty: Layer.Layer<OAuthSession> = Layer.succeed(OAuthSession, {
  current: Effect.succeed(Option.none())
})

/** A fixed session, for tests and embedding. */
export const layerStatic = (session: Session): Layer.Layer<OAuthSession> =>
  Layer.succeed(OAuthSession, { current: Effect.succeed(Option.some(session)) })

/** A session held in memory: `current` reads `cell`, so a program logs in and out with `Ref.set`. */
export const makeMemory = (cell: Ref.Ref<Option.Option<Session>>): OAuthSession["Type"] =>
  OAuthSession.of({ current: Ref.get(cell) })

/** An in-memory session cell, holding `session` at first (none when omitted). */
export const layerMemory = (session?: Session): Layer.Layer<OAuthSession> =>
  Layer.effect(OAuthSession, Effect.map(Ref.make(Option.fromNullable(session)), makeMemory))
