/**
 * What the account store holds, as the rest of the program sees it. Times are milliseconds since the epoch.
 * No secret appears here: tokens, codes, session ids and link tokens exist in the store only as hashes, and a
 * password only as its Argon2id hash (read separately, never part of `User`).
 */
import { WorkspaceId } from "@cmdop/domain/Machine"
import * as Schema from "effect/Schema"
import { Email } from "../Email.js"
import { Role } from "../Role.js"

/** A user's id (`usr_…`). */
export const UserId = Schema.String.pipe(Schema.pattern(/^usr_[0-9a-f]{24}$/), Schema.brand("UserId"))
export type UserId = typeof UserId.Type

/** A person with an account. `activeWorkspaceId`: the workspace their OAuth tokens speak for by default. */
export class User extends Schema.Class<User>("User")({
  id: UserId,
  email: Email,
  createdAt: Schema.Number,
  disabled: Schema.Boolean,
  activeWorkspaceId: Schema.optional(WorkspaceId)
}) {}

/** A user's role in one workspace (the workspace itself is the relay's; only its id is referenced). */
export class Membership extends Schema.Class<Membership>("Membership")({
  userId: UserId,
  workspaceId: WorkspaceId,
  role: Role,
  createdAt: Schema.Number
}) {}

/** A member of a workspace with their user record. */
export interface Member {
  readonly user: User
  readonly membership: Membership
}

/** What the audit trail records: membership, key, login and migration events. */
export const AuditAction = Schema.Literal(
  "user.created",
  "user.disabled",
  "user.enabled",
  "member.added",
  "member.role-changed",
  "member.removed",
  "domain-rule.changed",
  "signin-link.issued",
  "signin-link.used",
  "password.set",
  "login.succeeded",
  "login.failed",
  "logout",
  "workspace.activated",
  "device.approved",
  "device.denied",
  "token.issued",
  "token.refreshed",
  "token.revoked",
  "token.reuse-detected",
  "key.created",
  "key.rotated",
  "key.revoked",
  "machine.migrated",
  "machine.registered"
)
export type AuditAction = typeof AuditAction.Type

/**
 * One audit event: who (`actor`: a user id, `relay-host` for the operator's CLI, or `system`), what (`action`
 * on `subject`, with a short non-secret `detail`), in which workspace if any, and when.
 */
export class AuditEvent extends Schema.Class<AuditEvent>("AuditEvent")({
  actor: Schema.String,
  action: AuditAction,
  subject: Schema.String,
  workspaceId: Schema.optional(WorkspaceId),
  detail: Schema.String,
  at: Schema.Number
}) {}

/** What `appendAudit` takes. */
export type NewAuditEvent = typeof AuditEvent.Type

/** Which audit events `listAudit` returns (both filters apply when both are given). */
export interface AuditFilter {
  readonly workspaceId?: WorkspaceId
  /** Events whose actor or subject is this user. */
  readonly userId?: UserId
}

/** A one-time sign-in link, without its token. */
export interface NewSignInLink {
  readonly tokenHash: string
  readonly userId: UserId
  readonly createdAt: number
  readonly expiresAt: number
}

/** A server-side web session, without its id (stored as a hash). */
export class WebSession extends Schema.Class<WebSession>("WebSession")({
  userId: UserId,
  createdAt: Schema.Number,
  expiresAt: Schema.Number
}) {}

/** Where a device authorization stands. `consumed`: its tokens were issued (a second exchange is reuse). */
export const DeviceCodeStatus = Schema.Literal("pending", "approved", "denied", "consumed")
export type DeviceCodeStatus = typeof DeviceCodeStatus.Type

/** A device authorization request (RFC 8628) as stored: hashes of both codes, never the codes. */
export class DeviceCodeRecord extends Schema.Class<DeviceCodeRecord>("DeviceCodeRecord")({
  deviceCodeHash: Schema.String,
  userCodeHash: Schema.String,
  clientId: Schema.String,
  scope: Schema.String,
  createdAt: Schema.Number,
  expiresAt: Schema.Number,
  /** Seconds the client must wait between polls; grows by 5 with every `slow_down`. */
  intervalSeconds: Schema.Int,
  lastPolledAt: Schema.optional(Schema.Number),
  status: DeviceCodeStatus,
  /** Set on approval or denial: who decided. */
  userId: Schema.optional(UserId),
  /** Set on approval: the user's active workspace then. */
  workspaceId: Schema.optional(WorkspaceId),
  /** Set when consumed: the grant its tokens belong to. */
  grantId: Schema.optional(Schema.String)
}) {}

/** An OAuth grant: one login of one user on one client, the family every rotated token of it belongs to. */
export class Grant extends Schema.Class<Grant>("Grant")({
  id: Schema.String,
  userId: UserId,
  clientId: Schema.String,
  scope: Schema.String,
  /** The workspace that was active when the grant was approved (for the audit; calls use the current one). */
  workspaceId: Schema.optional(WorkspaceId),
  createdAt: Schema.Number,
  revokedAt: Schema.optional(Schema.Number)
}) {}

/** The hashes and lifetimes of a fresh access/refresh token pair. */
export interface NewTokenPair {
  readonly accessHash: string
  readonly accessExpiresAt: number
  readonly refreshHash: string
  readonly refreshExpiresAt: number
}

/** What an access token stands for right now: enough to authenticate a call in one lookup. */
export interface AccessTokenFacts {
  readonly expiresAt: number
  readonly grant: Grant
  readonly user: User
  /** The workspace the call is about: the requested one, else the user's active one (absent: none). */
  readonly workspaceId: WorkspaceId | undefined
  /** The user's membership in that workspace, if any. */
  readonly membership: Membership | undefined
}

/** A workspace's rule for single sign-on: people with a verified email in `domain` may join it as `role`. */
export class DomainRule extends Schema.Class<DomainRule>("DomainRule")({
  workspaceId: WorkspaceId,
  domain: Schema.String,
  role: Role,
  createdAt: Schema.Number
}) {}

/** Listing order of users and members: email, then id. */
export const userOrder = (a: User, b: User): number => compare(a.email, b.email) || compare(a.id, b.id)

/** Code-unit string order (databases' collations differ, so every layer sorts in JavaScript). */
export const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
