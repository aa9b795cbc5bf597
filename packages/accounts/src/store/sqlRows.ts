/**
 * Rows of the account tables as the SQL drivers return them, and their mapping to records. Integer columns go
 * through `int`, because PostgreSQL returns `BIGINT` as a string and libSQL may return a bigint.
 */
import type { WorkspaceId } from "@cmdop/domain/Machine"
import type { Email } from "../Email.js"
import type { Role } from "../Role.js"
import { AccountStoreError } from "./AccountStoreError.js"
import {
  AuditEvent,
  type AuditAction,
  DeviceCodeRecord,
  type DeviceCodeStatus,
  Grant,
  Membership,
  User,
  type UserId
} from "./records.js"

export const int = (u: unknown): number => (typeof u === "number" ? u : Number(u))
export const optionalInt = (u: unknown): number | undefined => (u === null || u === undefined ? undefined : int(u))
/** Only the fields that are present (`exactOptionalPropertyTypes` forbids explicit `undefined`). */
const present = <A extends Record<string, unknown>>(
  fields: A
): Partial<{ [K in keyof A]: Exclude<A[K], null | undefined> }> =>
  Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== null)) as never

export interface UserRow {
  readonly id: string
  readonly email: string
  readonly created_at: unknown
  readonly disabled: unknown
  readonly active_workspace_id: string | null
}
export const userColumns = "id, email, created_at, disabled, active_workspace_id"

export const toUser = (row: UserRow): User =>
  new User({
    id: row.id as UserId,
    email: row.email as Email,
    createdAt: int(row.created_at),
    disabled: int(row.disabled) !== 0,
    ...present({ activeWorkspaceId: row.active_workspace_id as WorkspaceId | null })
  })

export interface MembershipRow {
  readonly user_id: string
  readonly workspace_id: string
  readonly role: string
  readonly created_at: unknown
}

export const toMembership = (row: MembershipRow): Membership =>
  new Membership({
    userId: row.user_id as UserId,
    workspaceId: row.workspace_id as WorkspaceId,
    role: row.role as Role,
    createdAt: int(row.created_at)
  })

export interface DeviceCodeRow {
  readonly device_code_hash: string
  readonly user_code_hash: string
  readonly client_id: string
  readonly scope: string
  readonly created_at: unknown
  readonly expires_at: unknown
  readonly interval_seconds: unknown
  readonly last_polled_at: unknown
  readonly status: string
  readonly user_id: string | null
  readonly workspace_id: string | null
  readonly grant_id: string | null
}
export const deviceCodeColumns = `device_code_hash, user_code_hash, client_id, scope, created_at, expires_at,
  interval_seconds, last_polled_at, status, user_id, workspace_id, grant_id`

export const toDeviceCode = (row: DeviceCodeRow): DeviceCodeRecord =>
  new DeviceCodeRecord({
    deviceCodeHash: row.device_code_hash,
    userCodeHash: row.user_code_hash,
    clientId: row.client_id,
    scope: row.scope,
    createdAt: int(row.created_at),
    expiresAt: int(row.expires_at),
    intervalSeconds: int(row.interval_seconds),
    status: row.status as DeviceCodeStatus,
    ...present({
      lastPolledAt: optionalInt(row.last_polled_at),
      userId: row.user_id as UserId | null,
      workspaceId: row.workspace_id as WorkspaceId | null,
      grantId: row.grant_id
    })
  })

export interface GrantRow {
  readonly id: string
  readonly user_id: string
  readonly client_id: string
  readonly scope: string
  readonly workspace_id: string | null
  readonly created_at: unknown
  readonly revoked_at: unknown
}
export const grantColumns = "id, user_id, client_id, scope, workspace_id, created_at, revoked_at"

export const toGrant = (row: GrantRow): Grant =>
  new Grant({
    id: row.id,
    userId: row.user_id as UserId,
    clientId: row.client_id,
    scope: row.scope,
    createdAt: int(row.created_at),
    ...present({ workspaceId: row.workspace_id as WorkspaceId | null, revokedAt: optionalInt(row.revoked_at) })
  })

export interface AuditRow {
  readonly actor: string
  readonly action: string
  readonly subject: string
  readonly workspace_id: string | null
  readonly detail: string
  readonly at: unknown
}

export const toAudit = (row: AuditRow): AuditEvent =>
  new AuditEvent({
    actor: row.actor,
    action: row.action as AuditAction,
    subject: row.subject,
    detail: row.detail,
    at: int(row.at),
    ...present({ workspaceId: row.workspace_id as WorkspaceId | null })
  })

/** The driver's error code (SQLSTATE, `SQLITE_…`, `ECONNREFUSED`), which names the problem without any values. */
const codeOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

/** A database failure as a store error: the operation, the driver's message and code; never the parameters. */
export const sqlFailure = (operation: string, error: { readonly message: string; readonly cause?: unknown }) => {
  const code = codeOf(error.cause)
  return new AccountStoreError({
    reason: "Sql",
    subject: operation,
    detail: code === undefined ? error.message : `${error.message}, ${code}`
  })
}
