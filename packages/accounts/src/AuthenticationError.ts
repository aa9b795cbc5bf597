/**
 * Why an OAuth access token does not authenticate a call. `Unauthenticated` reasons mean "log in again"; the
 * others mean the person is known but may not act in that workspace. Messages are one line with a hint and never
 * hold the token.
 */
import * as Schema from "effect/Schema"

export class AuthenticationError extends Schema.TaggedError<AuthenticationError>()("AuthenticationError", {
  reason: Schema.Literal("InvalidToken", "Expired", "Revoked", "UserDisabled", "NoWorkspace", "NotAMember"),
  /** For `NotAMember`: the workspace asked for. */
  workspace: Schema.optional(Schema.String)
}) {
  override get message(): string {
    switch (this.reason) {
      case "InvalidToken":
        return 'the login token is not valid on this relay; run "cmdop login" again'
      case "Expired":
        return 'the login session has expired; run "cmdop login" again'
      case "Revoked":
        return 'the login session was signed out or revoked; run "cmdop login" again'
      case "UserDisabled":
        return "this account is disabled on the relay; ask the relay's operator"
      case "NoWorkspace":
        return "your account has no active workspace; choose one in the relay's web cabinet, or pass --workspace"
      case "NotAMember":
        return `you are not a member of workspace ${this.workspace ?? ""}; ask one of its owners to add you, or pick another with --workspace`
    }
  }

  /** How the relay answers: `Unauthenticated` (log in again) or `PermissionDenied`. */
  get kind(): "Unauthenticated" | "PermissionDenied" {
    return this.reason === "NotAMember" || this.reason === "NoWorkspace" || this.reason === "UserDisabled"
      ? "PermissionDenied"
      : "Unauthenticated"
  }
}
