/**
 * Authentication and authorization failures as the relay reports them: no or bad credential (UNAUTHENTICATED),
 * or a credential that may not do this (PERMISSION_DENIED, e.g. a share token used for another machine).
 * `message` is written for the user and never contains a secret.
 */
import * as Schema from "effect/Schema"

export class AccessError extends Schema.TaggedError<AccessError>()("AccessError", {
  reason: Schema.Literal("Unauthenticated", "PermissionDenied"),
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}
