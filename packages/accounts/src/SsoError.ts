/**
 * Failures of single sign-on through an OpenID provider, one family with a `reason`. Each message is one line a
 * person can act on; the provider's own words go in `detail` (they never hold a code or token).
 */
import * as Schema from "effect/Schema"

export class SsoError extends Schema.TaggedError<SsoError>()("SsoError", {
  reason: Schema.Literal("ProviderUnreachable", "CallbackRejected", "EmailNotVerified", "NotInvited"),
  detail: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const why = this.detail === undefined ? "" : ` (${this.detail})`
    switch (this.reason) {
      case "ProviderUnreachable":
        return `the sign-on provider could not be reached${why}; try again later, or sign in with your password`
      case "CallbackRejected":
        return `the sign-on did not complete${why}; start again from the sign-in page`
      case "EmailNotVerified":
        return "the sign-on provider did not vouch for your email address; verify it there, then try again"
      case "NotInvited":
        return `no workspace on this relay has invited ${this.detail ?? "this address"}; ask a workspace owner to add you`
    }
  }
}
