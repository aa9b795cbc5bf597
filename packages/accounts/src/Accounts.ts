/**
 * People on the relay: adding users (the relay host's `cmdop relay user add`), one-time sign-in links, passwords,
 * server-side web sessions with their CSRF tokens, the active workspace, membership management by owners, and
 * the audit trail. Transport-free: the relay's CLI and web cabinet call it; cookies and pages are the relay's.
 * Every check reads the store at call time, so a removal or demotion applies on the next call.
 */
import type { WorkspaceId } from "@cmdop/domain/Machine"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type { AccountError } from "./AccountError.js"
import type {
  AccountStore,
  AccountStoreError,
  AuditEvent,
  DomainRule,
  Membership,
  NewAuditEvent,
  User,
  UserId,
  WebSession
} from "./AccountStore.js"
import * as internal from "./internal/accounts.js"
import type { Role } from "./Role.js"

/** Lifetimes of what `Accounts` hands out. */
export interface AccountsConfig {
  /** How long a sign-in link works (once). */
  readonly signInLinkLifetime: Duration.Duration
  /** How long a web session lasts from sign-in (sign-out ends it earlier). */
  readonly sessionLifetime: Duration.Duration
}

/** Sign-in links for 24 hours, web sessions for 7 days. */
export const defaultConfig: AccountsConfig = {
  signInLinkLifetime: Duration.hours(24),
  sessionLifetime: Duration.days(7)
}

/** A one-time sign-in link's token (the relay puts it in a URL) and when it stops working. */
export interface SignInLink {
  readonly token: Redacted.Redacted<string>
  readonly expiresAt: number
}

/** A started web session: the id goes into the HttpOnly cookie, the CSRF token into every form. */
export interface SignedIn {
  readonly user: User
  readonly sessionId: Redacted.Redacted<string>
  readonly csrfToken: string
  readonly expiresAt: number
}

/** A workspace of the user, with their role and whether it is the active one. */
export interface UserWorkspace {
  readonly workspaceId: WorkspaceId
  readonly role: Role
  readonly active: boolean
}

/** Who is acting: a user, or the relay host's operator (`relay-host`), who may do anything. */
export type Actor = UserId | "relay-host"

export class Accounts extends Context.Tag("@cmdop/accounts/Accounts")<
  Accounts,
  {
    /**
     * Adds a person to a workspace with a role (or changes their role), creating the user when the email is new.
     * A sign-in link (where they set their password) comes back when the user was created by this call, or
     * always for the relay host; an owner adding someone who already has an account gets none, since a link
     * resets the password and so would hand the owner that person's account. The relay host may do this for any
     * workspace; a user must be an owner of it. Fails with `InvalidEmail`, `NotOwner` or `LastOwner` (demoting
     * the last owner).
     */
    readonly addMember: (input: {
      readonly actor: Actor
      readonly email: string
      readonly workspaceId: WorkspaceId
      readonly role: Role
    }) => Effect.Effect<
      { readonly user: User; readonly link: SignInLink | undefined },
      AccountError | AccountStoreError
    >
    /** Removes a member (owners, or the relay host). Fails with `NotOwner`, `LastOwner` or `NotAMember`. */
    readonly removeMember: (input: {
      readonly actor: Actor
      readonly workspaceId: WorkspaceId
      readonly userId: UserId
    }) => Effect.Effect<void, AccountError | AccountStoreError>
    /** The members of a workspace, to any member of it (or the relay host). Fails with `NotAMember`. */
    readonly listMembers: (
      actor: Actor,
      workspaceId: WorkspaceId
    ) => Effect.Effect<
      ReadonlyArray<{ readonly user: User; readonly membership: Membership }>,
      AccountError | AccountStoreError
    >
    /** A fresh sign-in link for an existing user (the relay host's reset). */
    readonly issueSignInLink: (
      userId: UserId,
      actor: Actor
    ) => Effect.Effect<SignInLink, AccountError | AccountStoreError>
    /**
     * Uses a sign-in link once: sets the password (Argon2id), ends the user's other sessions and OAuth grants
     * (a password set through a link is a reset), and starts a web session. Fails with `WeakPassword`,
     * `UserDisabled`, or the store's `SignInLink…` reasons.
     */
    readonly redeemSignInLink: (
      token: Redacted.Redacted<string>,
      password: Redacted.Redacted<string>
    ) => Effect.Effect<SignedIn, AccountError | AccountStoreError>
    /** Signs in with email and password. Fails with `InvalidCredentials` (unknown email and wrong password alike). */
    readonly signIn: (
      email: string,
      password: Redacted.Redacted<string>
    ) => Effect.Effect<SignedIn, AccountError | AccountStoreError>
    /**
     * Starts a web session for a user whose identity the caller has verified another way (single sign-on); `via`
     * names the way for the audit. Fails with `UserDisabled`.
     */
    readonly signInVerified: (userId: UserId, via: string) => Effect.Effect<SignedIn, AccountError | AccountStoreError>
    /** The session behind a cookie value. Fails with `SessionInvalid` (unknown, expired, or a disabled user). */
    readonly session: (
      sessionId: Redacted.Redacted<string>
    ) => Effect.Effect<{ readonly user: User; readonly session: WebSession }, AccountError | AccountStoreError>
    /** Checks a form's CSRF token against the session. Fails with `CsrfMismatch`. */
    readonly checkCsrf: (
      sessionId: Redacted.Redacted<string>,
      presented: string | undefined
    ) => Effect.Effect<void, AccountError>
    /** Ends a web session at once. Idempotent. */
    readonly signOut: (sessionId: Redacted.Redacted<string>) => Effect.Effect<void, AccountStoreError>
    /** The user's workspaces (what `GET /apix/machines/workspaces/` lists, with the relay's names added). */
    readonly workspaces: (userId: UserId) => Effect.Effect<ReadonlyArray<UserWorkspace>, AccountStoreError>
    /** Changes the active workspace (what OAuth calls act in by default). Fails with `NotAMember`. */
    readonly setActiveWorkspace: (
      userId: UserId,
      workspaceId: WorkspaceId
    ) => Effect.Effect<User, AccountError | AccountStoreError>
    /** Disables or re-enables a user (relay host); disabling ends their sessions and OAuth grants at once. */
    readonly setDisabled: (userId: UserId, disabled: boolean) => Effect.Effect<User, AccountStoreError>
    /**
     * Lets people with a verified email in `domain` join the workspace as `role` through single sign-on, or stops
     * it (`role` absent). Owners only (or the relay host). Fails with `NotOwner`.
     */
    readonly setDomainRule: (input: {
      readonly actor: Actor
      readonly workspaceId: WorkspaceId
      readonly domain: string
      readonly role: Role | undefined
    }) => Effect.Effect<void, AccountError | AccountStoreError>
    /** The workspace's domain rules, to its owners (or the relay host). Fails with `NotOwner`. */
    readonly listDomainRules: (
      actor: Actor,
      workspaceId: WorkspaceId
    ) => Effect.Effect<ReadonlyArray<DomainRule>, AccountError | AccountStoreError>
    /** Records an event of the relay's (key created/rotated/revoked, machine migrated) in the audit trail. */
    readonly record: (event: NewAuditEvent) => Effect.Effect<void, AccountStoreError>
    /** A workspace's audit trail, to its owners (or the relay host). Fails with `NotOwner`. */
    readonly auditTrail: (
      actor: Actor,
      workspaceId: WorkspaceId
    ) => Effect.Effect<ReadonlyArray<AuditEvent>, AccountError | AccountStoreError>
  }
>() {}

/** The service over the ambient `AccountStore`. */
export const layer = (config: AccountsConfig = defaultConfig): Layer.Layer<Accounts, never, AccountStore> =>
  Layer.effect(Accounts, internal.make(config))
