/**
 * Failures of the relay's durable store, one family with a `reason`. Messages are written for the operator or
 * user who triggered them and say how to fix the problem. A database failure carries only the operation and the
 * driver's error code, never the statement's parameters, so no key, hash or signing material can leak through it.
 */
import * as Schema from "effect/Schema"

/** Which registration field collided with another machine of the same workspace. */
export const MachineConflict = Schema.Struct({
  field: Schema.Literal("hostname", "name"),
  value: Schema.String,
  /** The id of the machine that already holds the value. */
  machineId: Schema.String
})
export type MachineConflict = typeof MachineConflict.Type

export class RelayStoreError extends Schema.TaggedError<RelayStoreError>()("RelayStoreError", {
  reason: Schema.Literal(
    "WorkspaceExists",
    "WorkspaceNotFound",
    "MachineConflict",
    "MachineSecretMismatch",
    "MachineNotFound",
    "SigningKeyExists",
    "SigningKeyNotFound",
    "ShareLinkExists",
    "ShareLinkNotFound",
    "KeyNotFound",
    "KeyNameTaken",
    "Sql"
  ),
  /** What the failure is about: a workspace name or id, a machine id, a signing key id, a share link id, or the store operation. */
  subject: Schema.String,
  conflict: Schema.optional(MachineConflict),
  /** For `Sql`: the driver's message and error code (never parameters). */
  detail: Schema.optional(Schema.String)
}) {
  override get message(): string {
    switch (this.reason) {
      case "WorkspaceExists":
        return `workspace "${this.subject}" already exists on this relay; choose another name, or issue a new key for it with "cmdop relay key rotate ${this.subject}"`
      case "WorkspaceNotFound":
        return `workspace "${this.subject}" does not exist on this relay; create it with "cmdop relay workspace create <name>"`
      case "MachineConflict": {
        const c = this.conflict
        return c === undefined
          ? `machine ${this.subject} conflicts with another machine of this workspace`
          : `cannot register machine ${this.subject}: ${c.field} "${c.value}" is already the hostname or name of machine ${c.machineId} in this workspace (names and hostnames are unique across both, in any case); register with another ${c.field} ("cmdop agent register --${c.field} <${c.field}>")${c.field === "hostname" ? `, give machine ${c.machineId} another display name ("cmdop agent register --name <name>" on it)` : ""}, or remove machine ${c.machineId} first`
      }
      case "MachineSecretMismatch":
        return `machine ${this.subject} is already registered with a different machine secret, so this request cannot prove it is that machine; nothing was changed. Run "cmdop agent register" on the machine itself, or remove the old record on the relay first`
      case "MachineNotFound":
        return `machine ${this.subject} is not registered on this relay; run "cmdop agent register" on that machine`
      case "SigningKeyExists":
        return `a share-link signing key with id "${this.subject}" already exists; use a new key id`
      case "SigningKeyNotFound":
        return `no share-link signing key with id "${this.subject}" exists on this relay`
      case "ShareLinkExists":
        return `a share link with id "${this.subject}" already exists; mint it again`
      case "ShareLinkNotFound":
        return `no share link with id "${this.subject}" exists on this relay`
      case "KeyNotFound":
        return `no live API key "${this.subject}" in this workspace (unknown, already revoked, or of another workspace); list the keys with "cmdop relay key list <workspace>"`
      case "KeyNameTaken":
        return `the workspace already has a live API key named "${this.subject}"; pick another name, or revoke that key first ("cmdop relay key revoke <workspace> ${this.subject}")`
      case "Sql":
        return `the relay's database failed during ${this.subject}${this.detail === undefined ? "" : ` (${this.detail})`}; check that the database is reachable and writable, then try again`
    }
  }
}
