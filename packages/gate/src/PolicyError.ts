/**
 * Why a `permissions.yaml` could not be used: the file, the line and what is wrong, plus a hint. Shown by
 * `permissions check`, logged on reload and reported by `agent status`, so it is one readable line.
 */
import * as Schema from "effect/Schema"

export class PolicyError extends Schema.TaggedError<PolicyError>()("PolicyError", {
  file: Schema.String,
  /** 1-based; 0 when the failure is about the file as a whole (unreadable, missing). */
  line: Schema.Number,
  problem: Schema.String,
  hint: Schema.String
}) {
  override get message(): string {
    const where = this.line > 0 ? `${this.file}:${this.line}` : this.file
    return `${where}: ${this.problem} (hint: ${this.hint})`
  }
}
