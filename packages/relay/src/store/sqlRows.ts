/**
 * The SQL store's rows as they come back from the database, decoded with schemas into the store's records (so a
 * row that does not hold a valid record is an error, never a mistyped value). Columns are snake_case; times are
 * `BIGINT` milliseconds, which PostgreSQL returns as strings and libSQL may return as bigints; flags are 0/1.
 */
import * as Schema from "effect/Schema"
import { ApiKeyRecord, KeyIdentity, MachineRecord, SigningKey, WorkspaceRecord } from "./records.js"
import { ShareEventKind } from "@cmdop/domain/ShareLink"

const NumberFromBigInt = Schema.transform(Schema.BigIntFromSelf, Schema.Number, {
  strict: true,
  decode: (b) => Number(b),
  encode: (n) => BigInt(n)
})

/** An integer column, whatever the driver made of it. */
export const IntColumn = Schema.Union(Schema.Number, Schema.NumberFromString, NumberFromBigInt).pipe(
  Schema.compose(Schema.Int)
)

/** An optional integer column: `NULL` is absent. */
const optionalInt = Schema.optionalWith(IntColumn, { nullable: true, exact: true })

/** A 0/1 flag column. */
export const FlagColumn = Schema.transform(IntColumn, Schema.Boolean, {
  strict: true,
  decode: (n) => n !== 0,
  encode: (b) => (b ? 1 : 0)
})

/** A column named `column` in the row. */
const column = <S extends Schema.Schema.Any>(schema: S, name: string) =>
  Schema.propertySignature(schema).pipe(Schema.fromKey(name))

/** A `workspaces` row. */
export const WorkspaceRow = Schema.compose(
  Schema.Struct({
    id: Schema.String,
    name: Schema.String,
    createdAt: column(IntColumn, "created_at"),
    keyGeneration: column(IntColumn, "key_generation")
  }),
  WorkspaceRecord
)

/** A `machines` row. */
export const MachineRow = Schema.compose(
  Schema.Struct({
    id: Schema.String,
    workspaceId: column(Schema.String, "workspace_id"),
    hostname: Schema.String,
    name: Schema.String,
    os: Schema.String,
    agentVersion: column(Schema.String, "agent_version"),
    secretHash: column(Schema.String, "secret_hash"),
    online: FlagColumn,
    lastHeartbeatAt: optionalInt.pipe(Schema.fromKey("last_heartbeat_at")),
    gateConfigured: Schema.optionalWith(FlagColumn, { nullable: true, exact: true }).pipe(
      Schema.fromKey("gate_configured")
    )
  }),
  MachineRecord
)

/** An `api_keys` row joined with its workspace: who a live key speaks for. */
export const KeyIdentityRow = Schema.compose(
  Schema.Struct({
    keyId: column(Schema.String, "key_id"),
    generation: IntColumn,
    workspaceId: column(Schema.String, "workspace_id"),
    workspaceName: column(Schema.String, "workspace_name")
  }),
  KeyIdentity
)

/** A live `api_keys` row (never its hash). */
export const ApiKeyRow = Schema.compose(
  Schema.Struct({
    id: Schema.String,
    workspaceId: column(Schema.String, "workspace_id"),
    name: Schema.String,
    prefix: Schema.String,
    generation: IntColumn,
    createdAt: column(IntColumn, "created_at")
  }),
  ApiKeyRecord
)

/** A `signing_keys` row. */
export const SigningKeyRow = Schema.compose(
  Schema.Struct({
    kid: Schema.String,
    algorithm: Schema.String,
    material: Schema.String,
    createdAt: column(IntColumn, "created_at"),
    retiredAt: optionalInt.pipe(Schema.fromKey("retired_at"))
  }),
  SigningKey
)

/** A `share_links` row (its events are rows of their own). */
export const ShareLinkRow = Schema.Struct({
  id: Schema.String,
  workspaceId: column(Schema.String, "workspace_id"),
  machineId: column(Schema.String, "machine_id"),
  machineHostname: column(Schema.String, "machine_hostname"),
  creator: Schema.String,
  createdAt: column(IntColumn, "created_at"),
  expiresAt: optionalInt.pipe(Schema.fromKey("expires_at")),
  keyGeneration: column(IntColumn, "key_generation"),
  revokedAt: optionalInt.pipe(Schema.fromKey("revoked_at")),
  lastUsedAt: optionalInt.pipe(Schema.fromKey("last_used_at")),
  useCount: column(IntColumn, "use_count"),
  sessionId: Schema.optionalWith(Schema.String, { nullable: true, exact: true }).pipe(Schema.fromKey("session_id")),
  signingKid: Schema.optionalWith(Schema.String, { nullable: true, exact: true }).pipe(Schema.fromKey("signing_kid"))
})
export type ShareLinkRow = typeof ShareLinkRow.Type

/** A `share_events` row; `seq` orders events recorded at the same instant. */
export const ShareEventRow = Schema.Struct({
  seq: IntColumn,
  linkId: column(Schema.String, "link_id"),
  kind: ShareEventKind,
  detail: Schema.String,
  at: IntColumn
})
export type ShareEventRow = typeof ShareEventRow.Type

/** The key generation a workspace is at (`workspaces.key_generation`), with the workspace's id. */
export const KeyGenerationRow = Schema.Struct({
  id: Schema.String,
  keyGeneration: column(IntColumn, "key_generation")
})

/** Another machine of the workspace that a registration could clash with. */
export const MachineClashRow = Schema.Struct({
  id: Schema.String,
  hostname: Schema.String,
  name: Schema.String
})
