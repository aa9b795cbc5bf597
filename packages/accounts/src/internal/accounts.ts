/**
 * The implementation of `Accounts` over the account store. Secrets (link tokens, session ids) are minted here
 * and stored only as hashes; passwords are hashed with Argon2id before they reach the store.
 */
import type { WorkspaceId } from "@cmdop/domain/Machine"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { AccountError } from "../AccountError.js"
import { AccountStoreError } from "../AccountStore.js"
import { AccountStore, type NewAuditEvent, type User, type UserId, WebSession } from "../AccountStore.js"
import type { Accounts, AccountsConfig, Actor, SignedIn } from "../Accounts.js"
import * as Email from "../Email.js"
import * as Password from "../Password.js"
import * as Role from "../Role.js"
import * as Secrets from "../Secrets.js"

/** An email domain: two or more DNS labels (letters, digits, inner hyphens), 253 characters at most. */
const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/

export const make = (config: AccountsConfig) =>
  Effect.gen(function* () {
    const store = yield* AccountStore
    const now = Clock.currentTimeMillis
    const audit = (event: Omit<NewAuditEvent, "at">) => Effect.flatMap(now, (at) => store.appendAudit({ ...event, at }))

    /** The actor's role in the workspace; the relay host counts as an owner. */
    const roleOf = (actor: Actor, workspaceId: WorkspaceId) =>
      actor === "relay-host"
        ? Effect.succeed<Role.Role | undefined>("owner")
        : Effect.map(store.getMembership(actor, workspaceId), (m) =>
            Option.getOrUndefined(Option.map(m, (x) => x.role))
          )

    const ownerCount = (workspaceId: WorkspaceId) =>
      Effect.map(
        store.listMembers(workspaceId),
        (members) => members.filter((m) => m.membership.role === "owner").length
      )

    /** Refuses the change unless `Role.checkMembershipChange` allows it. */
    const checkChange = (
      actor: Actor,
      workspaceId: WorkspaceId,
      target: UserId | undefined,
      nextRole: Role.Role | undefined
    ) =>
      Effect.gen(function* () {
        const actorRole = yield* roleOf(actor, workspaceId)
        const targetRole =
          target === undefined
            ? undefined
            : Option.getOrUndefined(Option.map(yield* store.getMembership(target, workspaceId), (m) => m.role))
        const verdict = Role.checkMembershipChange({
          actorRole,
          targetRole,
          nextRole,
          owners: yield* ownerCount(workspaceId)
        })
        if (Either.isLeft(verdict)) return yield* new AccountError({ reason: verdict.left })
        return targetRole
      })

    const issueLink = (user: User, actor: Actor) =>
      Effect.gen(function* () {
        const token = Secrets.mintSignInToken()
        const createdAt = yield* now
        const expiresAt = createdAt + Duration.toMillis(config.signInLinkLifetime)
        yield* store.createSignInLink({ tokenHash: Secrets.hashSecret(token), userId: user.id, createdAt, expiresAt })
        yield* audit({ actor, action: "signin-link.issued", subject: user.id, detail: user.email })
        return { token, expiresAt }
      })

    const startSession = (user: User) =>
      Effect.gen(function* () {
        const sessionId = Secrets.mintSessionId()
        const createdAt = yield* now
        const session = new WebSession({
          userId: user.id,
          createdAt,
          expiresAt: createdAt + Duration.toMillis(config.sessionLifetime)
        })
        yield* store.createWebSession(Secrets.hashSecret(sessionId), session)
        return {
          user,
          sessionId,
          csrfToken: Secrets.csrfToken(sessionId),
          expiresAt: session.expiresAt
        } satisfies SignedIn
      })

    const service: Accounts["Type"] = {
      addMember: ({ actor, email, role, workspaceId }) =>
        Effect.gen(function* () {
          const address = Email.fromInput(email)
          if (Either.isLeft(address)) return yield* new AccountError({ reason: "InvalidEmail", detail: email })
          const existing = yield* store.findUserByEmail(address.right)
          // The change is checked before a new user is created, so a refused call leaves nothing behind.
          const before = yield* checkChange(actor, workspaceId, Option.getOrUndefined(existing)?.id, role)
          const user = Option.isSome(existing) ? existing.value : yield* store.createUser(address.right)
          if (Option.isNone(existing)) {
            yield* audit({ actor, action: "user.created", subject: user.id, detail: user.email })
          }
          yield* store.putMembership(user.id, workspaceId, role)
          yield* audit({
            actor,
            action: before === undefined ? "member.added" : "member.role-changed",
            subject: user.id,
            workspaceId,
            detail: before === undefined ? `${user.email} as ${role}` : `${user.email}: ${before} → ${role}`
          })
          const link = Option.isNone(existing) || actor === "relay-host" ? yield* issueLink(user, actor) : undefined
          return { user: yield* store.getUser(user.id), link }
        }),

      removeMember: ({ actor, userId, workspaceId }) =>
        Effect.gen(function* () {
          const before = yield* checkChange(actor, workspaceId, userId, undefined)
          // The person to remove is not a member (the actor is: checkChange said so): "the user is not a member".
          if (before === undefined) return yield* new AccountStoreError({ reason: "NotAMember", subject: workspaceId })
          yield* store.removeMembership(userId, workspaceId)
          yield* audit({ actor, action: "member.removed", subject: userId, workspaceId, detail: `was ${before}` })
        }),

      listMembers: (actor, workspaceId) =>
        Effect.gen(function* () {
          const role = yield* roleOf(actor, workspaceId)
          if (role === undefined || !Role.can(role, "members.list")) {
            return yield* new AccountError({ reason: "NotAMember", detail: workspaceId })
          }
          return yield* store.listMembers(workspaceId)
        }),

      issueSignInLink: (userId, actor) => Effect.flatMap(store.getUser(userId), (user) => issueLink(user, actor)),

      redeemSignInLink: (token, password) =>
        Effect.gen(function* () {
          const weakness = Password.weakness(password)
          if (weakness !== undefined) return yield* new AccountError({ reason: "WeakPassword", detail: weakness })
          const userId = yield* store.redeemSignInLink(Secrets.hashSecret(token), yield* now)
          const user = yield* store.getUser(userId)
          if (user.disabled) return yield* new AccountError({ reason: "UserDisabled" })
          yield* store.setPasswordHash(userId, yield* Password.hash(password))
          yield* store.deleteUserSessions(userId)
          yield* store.revokeUserGrants(userId, yield* now)
          yield* audit({ actor: userId, action: "signin-link.used", subject: userId, detail: "" })
          yield* audit({ actor: userId, action: "password.set", subject: userId, detail: "" })
          return yield* startSession(user)
        }),

      signIn: (email, password) =>
        Effect.gen(function* () {
          const address = Email.fromInput(email)
          const user = Either.isRight(address) ? yield* store.findUserByEmail(address.right) : Option.none<User>()
          const stored = Option.isSome(user) ? yield* store.getPasswordHash(user.value.id) : Option.none()
          // Verify even when there is nothing to verify against, so timing does not tell which emails exist.
          const against = Option.isSome(stored) ? stored.value : yield* Password.decoy
          const matches = yield* Password.verify(against, password)
          if (Option.isNone(user) || Option.isNone(stored) || !matches || user.value.disabled) {
            if (Option.isSome(user)) {
              yield* audit({ actor: user.value.id, action: "login.failed", subject: user.value.id, detail: "web" })
            }
            return yield* new AccountError({ reason: "InvalidCredentials" })
          }
          yield* audit({ actor: user.value.id, action: "login.succeeded", subject: user.value.id, detail: "web" })
          return yield* startSession(user.value)
        }),

      signInVerified: (userId, via) =>
        Effect.gen(function* () {
          const user = yield* store.getUser(userId)
          if (user.disabled) return yield* new AccountError({ reason: "UserDisabled" })
          yield* audit({ actor: user.id, action: "login.succeeded", subject: user.id, detail: via })
          return yield* startSession(user)
        }),

      session: (sessionId) =>
        Effect.gen(function* () {
          const found = yield* store.getWebSession(Secrets.hashSecret(sessionId))
          if (Option.isNone(found) || (yield* now) >= found.value.expiresAt) {
            return yield* new AccountError({ reason: "SessionInvalid" })
          }
          const user = yield* store.getUser(found.value.userId)
          if (user.disabled) return yield* new AccountError({ reason: "SessionInvalid" })
          return { user, session: found.value }
        }),

      checkCsrf: (sessionId, presented) =>
        presented !== undefined && Secrets.verifyCsrf(sessionId, presented)
          ? Effect.void
          : Effect.fail(new AccountError({ reason: "CsrfMismatch" })),

      signOut: (sessionId) =>
        Effect.gen(function* () {
          const hash = Secrets.hashSecret(sessionId)
          const found = yield* store.getWebSession(hash)
          yield* store.deleteWebSession(hash)
          if (Option.isSome(found)) {
            yield* audit({ actor: found.value.userId, action: "logout", subject: found.value.userId, detail: "web" })
          }
        }),

      workspaces: (userId) =>
        Effect.gen(function* () {
          const user = yield* store.getUser(userId)
          const memberships = yield* store.listMemberships(userId)
          return memberships.map((m) => ({
            workspaceId: m.workspaceId,
            role: m.role,
            active: m.workspaceId === user.activeWorkspaceId
          }))
        }),

      setActiveWorkspace: (userId, workspaceId) =>
        Effect.gen(function* () {
          const user = yield* store.setActiveWorkspace(userId, workspaceId).pipe(
            Effect.catchIf(
              (e) => e.reason === "NotAMember",
              () => new AccountError({ reason: "NotAMember", detail: workspaceId })
            )
          )
          yield* audit({ actor: userId, action: "workspace.activated", subject: userId, workspaceId, detail: "" })
          return user
        }),

      setDisabled: (userId, disabled) =>
        Effect.gen(function* () {
          const user = yield* store.setUserDisabled(userId, disabled)
          if (disabled) {
            yield* store.deleteUserSessions(userId)
            yield* store.revokeUserGrants(userId, yield* now)
          }
          yield* audit({
            actor: "relay-host",
            action: disabled ? "user.disabled" : "user.enabled",
            subject: userId,
            detail: user.email
          })
          return user
        }),

      setDomainRule: ({ actor, domain, role, workspaceId }) =>
        Effect.gen(function* () {
          const actorRole = yield* roleOf(actor, workspaceId)
          if (actorRole === undefined || !Role.can(actorRole, "members.manage")) {
            return yield* new AccountError({ reason: "NotOwner" })
          }
          const normalized = domain.trim().toLowerCase().replace(/^@/, "")
          if (!DOMAIN.test(normalized)) return yield* new AccountError({ reason: "InvalidDomain", detail: domain })
          if (role === undefined) yield* store.removeDomainRule(workspaceId, normalized)
          else yield* store.putDomainRule(workspaceId, normalized, role)
          yield* audit({
            actor,
            action: "domain-rule.changed",
            subject: `@${normalized}`,
            workspaceId,
            detail: role === undefined ? "single sign-on closed for the domain" : `single sign-on joins as ${role}`
          })
        }),

      listDomainRules: (actor, workspaceId) =>
        Effect.gen(function* () {
          const role = yield* roleOf(actor, workspaceId)
          if (role === undefined || !Role.can(role, "members.manage"))
            return yield* new AccountError({ reason: "NotOwner" })
          return yield* store.listDomainRules(workspaceId)
        }),

      record: (event) => store.appendAudit(event),

      auditTrail: (actor, workspaceId) =>
        Effect.gen(function* () {
          const role = yield* roleOf(actor, workspaceId)
          if (role === undefined || !Role.can(role, "audit.read"))
            return yield* new AccountError({ reason: "NotOwner" })
          return yield* store.listAudit({ workspaceId })
        })
    }
    return service
  })
