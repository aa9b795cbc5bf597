/**
 * Where the relay's OAuth endpoints live and the RFC 8414 metadata document that announces them. There is no
 * authorization endpoint (the device flow needs none), so `response_types_supported` is empty.
 */
import type { OAuthConfig } from "./OAuthServer.js"

/** The scope a token is issued for (the only one). */
export const SCOPE = "connect"

/** The paths the endpoints are served at, relative to the issuer. */
export const paths = {
  metadata: "/.well-known/oauth-authorization-server",
  deviceAuthorization: "/oauth/device_authorization",
  token: "/oauth/token",
  revocation: "/oauth/revoke",
  verification: "/device"
} as const

/** The metadata document for `config`. */
export const metadataDocument = (config: OAuthConfig): Record<string, unknown> => ({
  issuer: config.issuer,
  device_authorization_endpoint: `${config.issuer}${paths.deviceAuthorization}`,
  token_endpoint: `${config.issuer}${paths.token}`,
  revocation_endpoint: `${config.issuer}${paths.revocation}`,
  grant_types_supported: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
  response_types_supported: [],
  scopes_supported: [SCOPE],
  token_endpoint_auth_methods_supported: ["none"],
  revocation_endpoint_auth_methods_supported: ["none"]
})
