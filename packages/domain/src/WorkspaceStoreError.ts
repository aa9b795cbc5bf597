/**
 * Failures of the workspace store itself: a file that does not parse, or one that cannot be read, written or
 * locked. The message names the file and the problem; a corrupt file is always left as it was.
 */
import * as Schema from "effect/Schema"

export class WorkspaceStoreError extends Schema.TaggedError<WorkspaceStoreError>()("WorkspaceStoreError", {
  reason: Schema.Literal("Corrupt", "Unreadable", "Unwritable", "Locked"),
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    switch (this.reason) {
      case "Corrupt":
        return `${this.path} ${this.detail}: left unchanged; fix or move the file, then try again`
      case "Unreadable":
        return `cannot read ${this.path}: ${this.detail}`
      case "Unwritable":
        return `cannot write ${this.path}: ${this.detail} (nothing was changed)`
      case "Locked":
        return `${this.path} is locked by another cmdop process: ${this.detail}; try again`
    }
  }
}
