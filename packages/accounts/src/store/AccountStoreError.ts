/**
 * Failures of the account store, one family with a `reason`. Messages are for the operator or user who
 * triggered them and say how to fix the problem. A database failure carries only the operation and the driver's
 * error code, never the statement's parameters, so no hash can leak through it.
 */
import * as Schema from "effect/Schema"

export class AccountStoreError extends Schema.TaggedError<AccountStoreError>()("AccountStoreError", {
  reason: Schema.Literal(
    "UserExists",
    "UserNotFound",
    "NotAMember",
    "SignInLinkNotFound",
    "SignInLinkUsed",
    "SignInLinkExpired",
    "DeviceCodeNotFound",
    "DeviceCodeNotPending",
    "SsoIdentityConflict",
    "Sql"
  ),
  /** What the failure is about: an email, a user id, a workspace id, or the store operation. */
  subject: Schema.String,
  /** For `Sql`: the driver's message and error code (never parameters). */
  detail: Schema.optional(Schema.String)
}) {
  override get message(): string {
    switch (this.reason) {
      case "UserExists":
        return `a user with email ${this.subject} already exists on this relay; add them to the workspace instead`
      case "UserNotFound":
        return `no user ${this.subject} exists on this relay; add one with "cmdop relay user add <email> --workspace <name>"`
      case "NotAMember":
        return `the user is not a member of workspace ${this.subject}; ask one of its owners to add them`
      case "SignInLinkNotFound":
        return "this sign-in link is not valid; ask the relay's operator for a new one"
      case "SignInLinkUsed":
        return "this sign-in link was already used; sign in with your password, or ask the relay's operator for a new link"
      case "SignInLinkExpired":
        return "this sign-in link has expired (links are valid for 24 hours); ask the relay's operator for a new one"
      case "DeviceCodeNotFound":
        return 'this code is not valid or has expired; run "cmdop login" again for a new one'
      case "DeviceCodeNotPending":
        return 'this code was already used; run "cmdop login" again for a new one'
      case "SsoIdentityConflict":
        return `this account is already linked to another identity of the sign-on provider ${this.subject}; sign in with that identity, or ask the relay's operator`
      case "Sql":
        return `the account database failed during ${this.subject}${this.detail === undefined ? "" : ` (${this.detail})`}; check that the database is reachable and writable, then try again`
    }
  }
}
