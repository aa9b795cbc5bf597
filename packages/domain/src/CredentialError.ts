/**
 * No usable credential: nothing in the precedence chain yielded a key, the key found is malformed, or the one found
 * is stored for another relay than the call's (`OtherRelay`: never sent there). The message says how to fix it.
 */
import * as Schema from "effect/Schema"

export class CredentialError extends Schema.TaggedError<CredentialError>()("CredentialError", {
  reason: Schema.Literal("Missing", "Malformed", "OtherRelay"),
  /**
   * For `Malformed`: where the bad value came from (`--api-key`, `CMDOP_API_KEY`, `workspace "x"`); for
   * `OtherRelay`: the stored credential that was not sent (`your login`, `the key of workspace "x"`).
   */
  origin: Schema.optional(Schema.String),
  /**
   * For `Malformed`: what is wrong with the key; for `Missing`: why the chain found none, and how to fix it; for
   * `OtherRelay`: which relay the credential is for, which one the call goes to, and how to fix it.
   */
  detail: Schema.optional(Schema.String)
}) {
  override get message(): string {
    switch (this.reason) {
      case "Missing":
        return this.detail === undefined
          ? 'no credential: run "cmdop login", "cmdop connect key set <key>", or pass --api-key'
          : `no credential: ${this.detail}; or run "cmdop login", or pass --api-key`
      case "Malformed":
        return `the API key from ${this.origin ?? "input"} is malformed: ${this.detail ?? "unreadable"}`
      case "OtherRelay":
        return `${this.origin ?? "the stored credential"} is not sent to this relay: ${this.detail ?? ""}`
    }
  }
}
