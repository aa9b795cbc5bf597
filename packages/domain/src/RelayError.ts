/**
 * The relay could not be used: unreachable, timed out, or failed internally. Carries the address tried so the
 * user sees where the CLI went.
 */
import * as Schema from "effect/Schema"

export class RelayError extends Schema.TaggedError<RelayError>()("RelayError", {
  /** `MachineLost`: the relay is fine, the machine's agent went away during a session (killed, network lost). */
  reason: Schema.Literal(
    "Unavailable",
    "Timeout",
    "Internal",
    "Protocol",
    "InvalidRequest",
    "ResourceExhausted",
    "MachineLost"
  ),
  server: Schema.String,
  detail: Schema.String,
  /**
   * `Unavailable` only: the relay could not be reached at all (set by the client from the transport's failure).
   * Without it the relay answered, and something behind it could not serve the call now (its database, another
   * node, the machine's agent): no advice to check that a relay runs there.
   */
  unreachable: Schema.optional(Schema.Boolean)
}) {
  override get message(): string {
    switch (this.reason) {
      case "Unavailable":
        return this.unreachable === true
          ? `relay ${this.server} is unreachable: ${this.detail}; is "cmdop relay serve" running there? (set --server or CMDOP_SERVER)`
          : `relay ${this.server} cannot serve this now: ${this.detail}`
      case "MachineLost":
        return `${this.detail} (its agent stopped or lost its network; the relay is fine); see "cmdop connect --list"`
      case "Timeout":
        return `relay ${this.server} did not answer in time: ${this.detail}`
      case "Internal":
        return `relay ${this.server} failed: ${this.detail}`
      case "InvalidRequest":
        return this.detail
      case "ResourceExhausted":
        return `relay ${this.server} refused: ${this.detail}`
      case "Protocol":
        return `relay ${this.server} sent something this CLI does not understand: ${this.detail} (versions differ?)`
    }
  }
}
