/**
 * Errors about workspaces as the user names them (unknown name, duplicate, none active). Each message says how to
 * fix it, listing the names that do exist.
 */
import * as Schema from "effect/Schema"

export class WorkspaceError extends Schema.TaggedError<WorkspaceError>()("WorkspaceError", {
  reason: Schema.Literal("NotFound", "Exists", "NoActive"),
  name: Schema.String,
  known: Schema.Array(Schema.String),
  /** Whether a `cmdop login` session is there: then `workspace sync` brings the person's workspaces. */
  signedIn: Schema.optional(Schema.Boolean)
}) {
  override get message(): string {
    const known = this.known.length === 0 ? "none are stored" : `known: ${this.known.join(", ")}`
    switch (this.reason) {
      case "NotFound":
        return this.signedIn === true
          ? `workspace "${this.name}" does not exist (${known}); "cmdop connect workspace sync" stores the workspaces your login belongs to, or add it with "cmdop connect workspace add ${this.name}"`
          : `workspace "${this.name}" does not exist (${known}); add it with "cmdop connect workspace add ${this.name}"`
      case "Exists":
        return `workspace "${this.name}" already exists; change it with "cmdop connect workspace set ${this.name} --api-key K --server S" (or add … --force), or pick another name`
      case "NoActive":
        // With none stored there is nothing to choose: say how to make the first.
        return this.known.length === 0
          ? `no workspace is stored yet; create one: "cmdop connect workspace add <name> --api-key <key> --server <host:port>" (or "cmdop connect key set <key> --workspace <name>")`
          : `no active workspace (${known}); choose one with "cmdop connect workspace use <name>"`
    }
  }
}
