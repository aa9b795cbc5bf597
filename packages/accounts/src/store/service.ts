/**
 * The `AccountStore` service tag: the durable state of people on the relay (users, memberships in the relay's
 * workspaces, password hashes, one-time sign-in links, web sessions, device authorizations, OAuth grants and
 * tokens, and the audit trail). Every layer (memory, SQLite, PostgreSQL) passes `accountStoreContract`. Secrets
 * arrive here already hashed; the store never sees a token, code, session id or password.
 */
import type { WorkspaceId } from "@cmdop/domain/Machine"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type { Email } from "../Email.js"
import type { Role } from "../Role.js"
import type { AccountStoreError } from "./AccountStoreError.js"
import type {
  AccessTokenFacts,
  AuditEvent,
  AuditFilter,
  DeviceCodeRecord,
  DomainRule,
  Grant,
  Member,
  Membership,
  NewAuditEvent,
  NewSignInLink,
  NewTokenPair,
  User,
  UserId,
  WebSession
} from "./records.js"
import type { PollOutcome } from "./transitions.js"

/**
 * The result of a poll: the outcome, the code as now stored, and the grant: the new one when tokens were issued,
 * the revoked one on reuse (absent only for a code consumed before any grant existed, which cannot happen).
 */
export type PollResult =
  | { readonly outcome: "issued"; readonly code: DeviceCodeRecord; readonly grant: Grant }
  | { readonly outcome: "reused"; readonly code: DeviceCodeRecord; readonly grant: Grant | undefined }
  | {
      readonly outcome: Exclude<PollOutcome, "issued" | "reused">
      readonly code: DeviceCodeRecord
      readonly grant: undefined
    }

/** The result of a refresh: `rotated` with the grant, `reused` (the grant is now revoked), or `invalid`. */
export type RefreshResult =
  | { readonly _tag: "rotated"; readonly grant: Grant }
  | { readonly _tag: "reused"; readonly grant: Grant }
  | { readonly _tag: "invalid" }

export class AccountStore extends Context.Tag("@cmdop/accounts/AccountStore")<
  AccountStore,
  {
    /** Creates a user, enabled, with no password and no active workspace. Fails with `UserExists`. */
    readonly createUser: (email: Email) => Effect.Effect<User, AccountStoreError>
    /** Fails with `UserNotFound`. */
    readonly getUser: (id: UserId) => Effect.Effect<User, AccountStoreError>
    readonly findUserByEmail: (email: Email) => Effect.Effect<Option.Option<User>, AccountStoreError>
    /** Disables or re-enables a user (a disabled user cannot sign in or use tokens). Fails with `UserNotFound`. */
    readonly setUserDisabled: (id: UserId, disabled: boolean) => Effect.Effect<User, AccountStoreError>
    /** Stores a new Argon2id hash. Fails with `UserNotFound`. */
    readonly setPasswordHash: (id: UserId, hash: Redacted.Redacted<string>) => Effect.Effect<void, AccountStoreError>
    /** The stored password hash; `None` before a password is set. Fails with `UserNotFound`. */
    readonly getPasswordHash: (id: UserId) => Effect.Effect<Option.Option<Redacted.Redacted<string>>, AccountStoreError>
    /** Makes a workspace the user's active one. Fails with `NotAMember` unless they are a member of it. */
    readonly setActiveWorkspace: (id: UserId, workspaceId: WorkspaceId) => Effect.Effect<User, AccountStoreError>

    /**
     * Adds the user to the workspace with `role`, or changes their role there. A user with no active workspace
     * gets this one. Fails with `UserNotFound`.
     */
    readonly putMembership: (
      userId: UserId,
      workspaceId: WorkspaceId,
      role: Role
    ) => Effect.Effect<Membership, AccountStoreError>
    /**
     * Removes the user from the workspace; when it was their active one, they have none until they pick another.
     * Fails with `NotAMember`.
     */
    readonly removeMembership: (userId: UserId, workspaceId: WorkspaceId) => Effect.Effect<void, AccountStoreError>
    readonly getMembership: (
      userId: UserId,
      workspaceId: WorkspaceId
    ) => Effect.Effect<Option.Option<Membership>, AccountStoreError>
    /** The user's memberships, by workspace id. */
    readonly listMemberships: (userId: UserId) => Effect.Effect<ReadonlyArray<Membership>, AccountStoreError>
    /** The workspace's members by email. */
    readonly listMembers: (workspaceId: WorkspaceId) => Effect.Effect<ReadonlyArray<Member>, AccountStoreError>

    /** Stores a sign-in link (its token's hash). */
    readonly createSignInLink: (link: NewSignInLink) => Effect.Effect<void, AccountStoreError>
    /**
     * Uses the link at `at`, once: returns its user. Fails with `SignInLinkNotFound`, `SignInLinkUsed` or
     * `SignInLinkExpired`; of two concurrent redemptions exactly one succeeds.
     */
    readonly redeemSignInLink: (tokenHash: string, at: number) => Effect.Effect<UserId, AccountStoreError>

    /** Stores a web session under the hash of its id. */
    readonly createWebSession: (idHash: string, session: WebSession) => Effect.Effect<void, AccountStoreError>
    /** The session stored under this hash (expired ones included; the caller checks `expiresAt`). */
    readonly getWebSession: (idHash: string) => Effect.Effect<Option.Option<WebSession>, AccountStoreError>
    /** Ends one session. Idempotent. */
    readonly deleteWebSession: (idHash: string) => Effect.Effect<void, AccountStoreError>
    /** Ends every session of a user (password change, disabling). */
    readonly deleteUserSessions: (userId: UserId) => Effect.Effect<void, AccountStoreError>

    /** Stores a new device authorization request. */
    readonly createDeviceCode: (code: DeviceCodeRecord) => Effect.Effect<void, AccountStoreError>
    /** The request with this user code hash, expired ones included. */
    readonly findDeviceCodeByUserCode: (
      userCodeHash: string
    ) => Effect.Effect<Option.Option<DeviceCodeRecord>, AccountStoreError>
    /**
     * Approves (with the user and the workspace the tokens are for) or denies a pending, unexpired request at
     * `at`. Fails with `DeviceCodeNotFound` (unknown or expired) or `DeviceCodeNotPending` (decided already).
     */
    readonly decideDeviceCode: (
      userCodeHash: string,
      at: number,
      decision:
        | { readonly approve: true; readonly userId: UserId; readonly workspaceId: WorkspaceId | undefined }
        | { readonly approve: false; readonly userId: UserId }
    ) => Effect.Effect<DeviceCodeRecord, AccountStoreError>
    /**
     * One poll of the token endpoint at `at` (`transitions.poll`), atomically. On `issued` a grant is created
     * with `tokens`; on `reused` the grant issued from the code is revoked. `None` for an unknown code.
     */
    readonly pollDeviceCode: (
      deviceCodeHash: string,
      at: number,
      tokens: NewTokenPair
    ) => Effect.Effect<Option.Option<PollResult>, AccountStoreError>

    /**
     * Rotates a refresh token at `at` (`transitions.refresh`), atomically: consumes it and stores `tokens` in
     * its grant; a reused token revokes its grant (every token of it). Unknown tokens are `invalid`.
     */
    readonly rotateRefreshToken: (
      refreshHash: string,
      at: number,
      tokens: NewTokenPair
    ) => Effect.Effect<RefreshResult, AccountStoreError>
    /** Revokes the grant of the access or refresh token with this hash; `None` when no token has it. */
    readonly revokeToken: (tokenHash: string, at: number) => Effect.Effect<Option.Option<Grant>, AccountStoreError>
    /** Revokes every grant of a user (disabling, password change). */
    readonly revokeUserGrants: (userId: UserId, at: number) => Effect.Effect<void, AccountStoreError>
    /** The user's grants, oldest first (revoked ones included). */
    readonly listGrants: (userId: UserId) => Effect.Effect<ReadonlyArray<Grant>, AccountStoreError>
    /**
     * What the access token with this hash stands for, in one lookup: its expiry, grant and user, and the user's
     * membership in `workspaceId` (or in their active workspace when none is given). `None` for an unknown hash.
     */
    readonly lookupAccessToken: (
      accessHash: string,
      workspaceId: WorkspaceId | undefined
    ) => Effect.Effect<Option.Option<AccessTokenFacts>, AccountStoreError>

    /** Lets people of `domain` join the workspace as `role` through single sign-on (replaces an earlier rule). */
    readonly putDomainRule: (
      workspaceId: WorkspaceId,
      domain: string,
      role: Role
    ) => Effect.Effect<DomainRule, AccountStoreError>
    /** Removes the rule. Idempotent. */
    readonly removeDomainRule: (workspaceId: WorkspaceId, domain: string) => Effect.Effect<void, AccountStoreError>
    /** The workspace's rules by domain. */
    readonly listDomainRules: (workspaceId: WorkspaceId) => Effect.Effect<ReadonlyArray<DomainRule>, AccountStoreError>
    /** Every rule for `domain`, by workspace id. */
    readonly rulesForDomain: (domain: string) => Effect.Effect<ReadonlyArray<DomainRule>, AccountStoreError>
    /** The user an OpenID identity belongs to. */
    readonly findSsoIdentity: (
      issuer: string,
      subject: string
    ) => Effect.Effect<Option.Option<UserId>, AccountStoreError>
    /**
     * Links an OpenID identity to a user. Idempotent for the same link; fails with `SsoIdentityConflict` when the
     * identity belongs to another user or the user already has another subject at that issuer.
     */
    readonly linkSsoIdentity: (
      issuer: string,
      subject: string,
      userId: UserId
    ) => Effect.Effect<void, AccountStoreError>

    /**
     * Deletes what can no longer be used at `now`: expired web sessions, sign-in links and device codes, and
     * expired OAuth tokens (grants stay, for the audit). Returns how many rows went. The relay runs it now and then.
     */
    readonly purgeExpired: (now: number) => Effect.Effect<number, AccountStoreError>

    /** Appends an event to the audit trail. */
    readonly appendAudit: (event: NewAuditEvent) => Effect.Effect<void, AccountStoreError>
    /** The matching events, oldest first (in the order recorded when times tie). */
    readonly listAudit: (filter: AuditFilter) => Effect.Effect<ReadonlyArray<AuditEvent>, AccountStoreError>
  }
>() {}
