/**
 * Failures of people's actions on the relay (signing in, sessions, approving a device, managing members), one
 * family with a `reason`. Each message is one line a person can act on; none holds a password, token or code.
 */
import * as Schema from "effect/Schema"

export class AccountError extends Schema.TaggedError<AccountError>()("AccountError", {
  reason: Schema.Literal(
    "InvalidCredentials",
    "WeakPassword",
    "InvalidEmail",
    "SessionInvalid",
    "CsrfMismatch",
    "UserDisabled",
    "NoWorkspace",
    "NotAMember",
    "NotOwner",
    "LastOwner",
    "InvalidUserCode",
    "InvalidDomain"
  ),
  /** Extra words for the message: the weakness of a password, a workspace id, an email. */
  detail: Schema.optional(Schema.String)
}) {
  override get message(): string {
    switch (this.reason) {
      case "InvalidCredentials":
        return "the email or password is wrong; try again, or ask the relay's operator for a sign-in link"
      case "WeakPassword":
        return this.detail ?? "the password is too weak"
      case "InvalidEmail":
        return `"${this.detail ?? ""}" is not an email address; use the form name@example.com`
      case "SessionInvalid":
        return "you are signed out (the session ended or expired); sign in again"
      case "CsrfMismatch":
        return "the form was stale or did not come from this site; reload the page and try again"
      case "UserDisabled":
        return "this account is disabled on the relay; ask the relay's operator"
      case "NoWorkspace":
        return "your account belongs to no workspace yet; ask a workspace owner to add you"
      case "NotAMember":
        return `you are not a member of workspace ${this.detail ?? ""}; ask one of its owners to add you`
      case "NotOwner":
        return "only an owner of the workspace can do this; ask one of its owners"
      case "LastOwner":
        return "this is the workspace's last owner; make someone else an owner first"
      case "InvalidUserCode":
        return 'this code is not valid or has expired; run "cmdop login" again for a new one'
      case "InvalidDomain":
        return `"${this.detail ?? ""}" is not an email domain; use the part after the @, such as example.com`
    }
  }
}
