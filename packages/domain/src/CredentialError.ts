/**
 * No usable credential: nothing in the precedence chain yielded a key, or the key found is malformed. The
 * message says where to put one.
 */
import * as Schema from "effect/Schema"

export class CredentialError extends Schema.TaggedError<CredentialError>()("CredentialError", {
  reason: Schema.Literal("Missing", "Malformed"),
  /** For `Malformed`: where the bad value came from (`--api-key`, `CMDOP_API_KEY`, `workspace "x"`). */
  origin: Schema.optional(Schema.String),
  /** For `Malformed`: what is wrong with the key; for `Missing`: why the chain found none, and how to fix it. */
  detail: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return this.reason === "Missing"
      ? this.detail === undefined
        ? 'no credential: run "cmdop login", "cmdop connect key set <key>", or pass --api-key'
        : `no credential: ${this.detail}; or run "cmdop login", or pass --api-key`
      : `the API key from ${this.origin ?? "input"} is malformed: ${this.detail ?? "unreadable"}`
  }
}
