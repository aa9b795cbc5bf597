/**
 * @cmdop/accounts: people on the relay. Users and their roles in the relay's workspaces, Argon2id passwords,
 * one-time sign-in links, server-side web sessions with CSRF tokens, the OAuth 2.0 device authorization grant
 * (RFC 8628) with rotating refresh tokens, revocation (RFC 7009) and metadata (RFC 8414), single sign-on with an
 * OpenID provider, and the audit trail. The relay mounts `OAuthHttp` and calls `Accounts`, `OAuthServer` and
 * `Sso`; nothing here imports the relay.
 */
export * as AccountError from "./AccountError.js"
export * as Accounts from "./Accounts.js"
export * as AccountStore from "./AccountStore.js"
export * as AuthenticationError from "./AuthenticationError.js"
export * as Email from "./Email.js"
export * as OAuthError from "./OAuthError.js"
export * as OAuthHttp from "./OAuthHttp.js"
export * as OAuthMetadata from "./OAuthMetadata.js"
export * as OAuthServer from "./OAuthServer.js"
export * as Password from "./Password.js"
export * as Role from "./Role.js"
export * as Secrets from "./Secrets.js"
export * as Sso from "./Sso.js"
export * as SsoError from "./SsoError.js"
