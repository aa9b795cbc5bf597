/**
 * The errors of the OAuth endpoints, by their RFC 6749 §5.2 / RFC 8628 §3.5 / RFC 7009 code. They travel to the
 * client as `{"error", "error_description"}` with status 400 (401 for `invalid_client`); the description is one
 * line a person can act on, and never holds a token or code.
 */
import * as Schema from "effect/Schema"

export const OAuthErrorCode = Schema.Literal(
  "invalid_request",
  "invalid_client",
  "invalid_grant",
  "unsupported_grant_type",
  "invalid_scope",
  "authorization_pending",
  "slow_down",
  "access_denied",
  "expired_token",
  "unsupported_token_type"
)
export type OAuthErrorCode = typeof OAuthErrorCode.Type

export class OAuthError extends Schema.TaggedError<OAuthError>()("OAuthError", {
  error: OAuthErrorCode,
  description: Schema.String
}) {
  override get message(): string {
    return `${this.error}: ${this.description}`
  }

  /** The HTTP status of the error response (RFC 6749 §5.2). */
  get status(): number {
    return this.error === "invalid_client" ? 401 : 400
  }

  /** The JSON body of the error response. */
  get body(): { readonly error: OAuthErrorCode; readonly error_description: string } {
    return { error: this.error, error_description: this.description }
  }
}

/** A shorthand for `new OAuthError(...)`. */
export const oauthError = (error: OAuthErrorCode, description: string) => new OAuthError({ error, description })
