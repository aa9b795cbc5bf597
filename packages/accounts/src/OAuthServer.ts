/**
 * The relay as an OAuth 2.0 authorization server for `cmdop login`: the device authorization grant (RFC 8628)
 * with rotating refresh tokens, revocation (RFC 7009), metadata (RFC 8414), and `authenticateAccessToken` for
 * every call that carries a `cmdop_…` token. Transport-free: `OAuthHttp` serves it over HTTP. Tokens are opaque
 * and looked up by their SHA-256; the store holds hashes only.
 */
import type { WorkspaceId } from "@cmdop/domain/Machine"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type { AccountError } from "./AccountError.js"
import type { AccountStore, AccountStoreError } from "./AccountStore.js"
import type { AuthenticationError } from "./AuthenticationError.js"
import * as internal from "./internal/oauthServer.js"
import type { OAuthError } from "./OAuthError.js"
import type { Role } from "./Role.js"
import type { User, UserId } from "./store/records.js"

/** How the authorization server is set up. */
export interface OAuthConfig {
  /**
   * The relay's public base URL (`https://relay.example`), the `issuer` of RFC 8414; no trailing slash. It is read
   * on every use, so a config may define it as a getter when the URL is known only once the relay is listening.
   */
  readonly issuer: string
  /** Client ids allowed to start a device flow (public clients, no secret). */
  readonly clients: ReadonlyArray<string>
  readonly deviceCodeLifetime: Duration.Duration
  /** The polling interval handed out (RFC 8628 `interval`). */
  readonly pollInterval: Duration.Duration
  readonly accessTokenLifetime: Duration.Duration
  readonly refreshTokenLifetime: Duration.Duration
}

/** The defaults: client `cmdop-cli`, codes valid 10 min, 5 s interval, access 72 h, refresh 30 days. */
export const defaultConfig = (issuer: string): OAuthConfig => ({
  issuer: issuer.replace(/\/+$/, ""),
  clients: ["cmdop-cli"],
  deviceCodeLifetime: Duration.minutes(10),
  pollInterval: Duration.seconds(5),
  accessTokenLifetime: Duration.hours(72),
  refreshTokenLifetime: Duration.days(30)
})

export { metadataDocument, paths, SCOPE } from "./OAuthMetadata.js"

/** RFC 8628 §3.2: the device authorization response. */
export interface DeviceAuthorizationResponse {
  readonly device_code: string
  readonly user_code: string
  readonly verification_uri: string
  readonly verification_uri_complete: string
  readonly expires_in: number
  readonly interval: number
}

/** RFC 6749 §5.1: a successful token response. */
export interface TokenResponse {
  readonly access_token: string
  readonly token_type: "Bearer"
  readonly expires_in: number
  readonly refresh_token: string
  readonly scope: string
}

/** What the `/device` page shows before a person approves: who asks, until when. */
export interface PendingDevice {
  readonly clientId: string
  readonly scope: string
  readonly expiresAt: number
}

/** Who an access token speaks for in this call, read from the store at call time. */
export interface AccessIdentity {
  readonly user: User
  readonly workspaceId: WorkspaceId
  readonly role: Role
  readonly grantId: string
  readonly expiresAt: number
}

export class OAuthServer extends Context.Tag("@cmdop/accounts/OAuthServer")<
  OAuthServer,
  {
    readonly config: OAuthConfig
    /** The RFC 8414 metadata document. */
    readonly metadata: Record<string, unknown>
    /** RFC 8628 §3.1–3.2: starts a device flow for a registered client. */
    readonly deviceAuthorization: (request: {
      readonly clientId: string | undefined
      readonly scope: string | undefined
    }) => Effect.Effect<DeviceAuthorizationResponse, OAuthError | AccountStoreError>
    /** The pending request behind a code a person typed. Fails with `InvalidUserCode`. */
    readonly describeUserCode: (userCode: string) => Effect.Effect<PendingDevice, AccountError | AccountStoreError>
    /**
     * A signed-in person approves the code: the grant is bound to them and, when `workspaceId` is given (one they
     * belong to), that workspace becomes their active one; otherwise their active workspace stays. Fails with
     * `InvalidUserCode`, `UserDisabled`, `NoWorkspace` or `NotAMember`.
     */
    readonly approveDevice: (
      userId: UserId,
      userCode: string,
      workspaceId?: WorkspaceId
    ) => Effect.Effect<void, AccountError | AccountStoreError>
    /** A signed-in person refuses the code; the client's next poll gets `access_denied`. */
    readonly denyDevice: (userId: UserId, userCode: string) => Effect.Effect<void, AccountError | AccountStoreError>
    /** The token endpoint (RFC 6749 §3.2) for the device code and refresh token grants, over form parameters. */
    readonly token: (
      params: Readonly<Record<string, string | undefined>>
    ) => Effect.Effect<TokenResponse, OAuthError | AccountStoreError>
    /** RFC 7009: revokes the grant of an access or refresh token (unknown tokens succeed, as §2.2 requires). */
    readonly revoke: (
      params: Readonly<Record<string, string | undefined>>
    ) => Effect.Effect<void, OAuthError | AccountStoreError>
    /**
     * Authenticates one call: the token must be known, unexpired, of a live grant and an enabled user; the call
     * acts in `requestedWorkspace` when given (the user must be a member), else in the user's active workspace.
     * Cost: one SHA-256 and one indexed lookup (a join of four primary/unique keys); see docs/accounts.md.
     */
    readonly authenticateAccessToken: (
      token: Redacted.Redacted<string>,
      requestedWorkspace?: WorkspaceId
    ) => Effect.Effect<AccessIdentity, AuthenticationError | AccountStoreError>
    /**
     * The role the person with this email holds in a workspace now, whatever their logins: `None` when there is
     * no such person, they are disabled, or not a member. For what a person left behind that holds no token of
     * theirs (a shell they opened, a browser-terminal link the cabinet minted for them): it ends with their access.
     */
    readonly currentRole: (
      email: string,
      workspaceId: WorkspaceId
    ) => Effect.Effect<Option.Option<Role>, AccountStoreError>
  }
>() {}

/** The server over the ambient `AccountStore`. */
export const layer = (config: OAuthConfig): Layer.Layer<OAuthServer, never, AccountStore> =>
  Layer.effect(OAuthServer, internal.make(config))
