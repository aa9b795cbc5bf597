/**
 * Single sign-on with an existing OpenID Connect provider (Keycloak, Google, Entra, …), the relay acting as the
 * relying party through `openid-client`: the authorization code flow with PKCE (S256), `state` and `nonce`. Who
 * may join is the owners' decision: a person whose (verified) email already has an account — an owner invited it
 * with `Accounts.addMember` — signs in as that account; a new person joins only the workspaces whose domain rule
 * matches their email's domain, with the rule's role. The first sign-on links the provider's subject to the
 * account, so later sign-ons find it even if the email changes at the provider.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type { AccountError } from "./AccountError.js"
import type { Accounts, SignedIn } from "./Accounts.js"
import type { AccountStore, AccountStoreError } from "./AccountStore.js"
import * as internal from "./internal/sso.js"
import type { SsoError } from "./SsoError.js"

/** The provider and this relay's registration with it (`relay serve --oidc-issuer … --oidc-client-id …`). */
export interface SsoConfig {
  /** The provider's issuer URL; its discovery document is read on first use. */
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  /** Where the provider sends the browser back: the relay's `<public-url>/sso/callback`. */
  readonly redirectUri: string
  /** Allows an `http:` provider (loopback tests and development only). */
  readonly allowInsecureRequests?: boolean
}

/**
 * What the relay keeps between `begin` and `complete`, for one browser (in a short-lived HttpOnly cookie or
 * server-side): the values the callback must match.
 */
export interface SsoAttempt {
  readonly state: string
  readonly nonce: string
  readonly codeVerifier: Redacted.Redacted<string>
}

export class Sso extends Context.Tag("@cmdop/accounts/Sso")<
  Sso,
  {
    /** Where to send the browser, and the attempt to keep until it comes back. */
    readonly begin: Effect.Effect<{ readonly authorizationUrl: URL; readonly attempt: SsoAttempt }, SsoError>
    /**
     * Handles the provider's redirect back (`callbackUrl` as the browser requested it): checks state, exchanges
     * the code with the PKCE verifier, validates the ID token (signature, issuer, audience, nonce), finds or admits
     * the person, and starts a web session. Fails with `SsoError` (`CallbackRejected`, `EmailNotVerified`,
     * `NotInvited`) or `AccountError` (`UserDisabled`).
     */
    readonly complete: (
      callbackUrl: URL,
      attempt: SsoAttempt
    ) => Effect.Effect<SignedIn, SsoError | AccountError | AccountStoreError>
  }
>() {}

/** The relying party for `config`, over the account store and `Accounts`. */
export const layer = (config: SsoConfig): Layer.Layer<Sso, never, AccountStore | Accounts> =>
  Layer.effect(Sso, internal.make(config))
