/**
 * Roles in a workspace and what each may do, as pure functions. `owner`: keys, members, everything. `member`:
 * list and reach machines, mint share links, revoke the links they minted. `viewer`: list only. The relay asks
 * these on every call with the role it has just read, so a demotion or removal takes effect on the next call.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

export const Role = Schema.Literal("owner", "member", "viewer")
export type Role = typeof Role.Type

/** Everything a call in a workspace may try. */
export type Action =
  | "machines.list"
  | "machines.reach"
  | "machines.register"
  | "shares.list"
  | "shares.mint"
  | "shares.revoke-own"
  | "shares.revoke-any"
  | "keys.manage"
  | "members.list"
  | "members.manage"
  | "audit.read"

const grants: Record<Role, ReadonlySet<Action>> = {
  viewer: new Set(["machines.list", "shares.list", "members.list"]),
  member: new Set([
    "machines.list",
    "machines.reach",
    "machines.register",
    "shares.list",
    "shares.mint",
    "shares.revoke-own",
    "members.list"
  ]),
  owner: new Set([
    "machines.list",
    "machines.reach",
    "machines.register",
    "shares.list",
    "shares.mint",
    "shares.revoke-own",
    "shares.revoke-any",
    "keys.manage",
    "members.list",
    "members.manage",
    "audit.read"
  ])
}

/** Whether `role` may perform `action`. */
export const can = (role: Role, action: Action): boolean => grants[role].has(action)

/** How roles rank: a role includes everything of the roles below it. */
export const rank = (role: Role): number => (role === "owner" ? 2 : role === "member" ? 1 : 0)

/** Whether `role` is at least `minimum` (`member` is at least `viewer`). */
export const atLeast = (role: Role, minimum: Role): boolean => rank(role) >= rank(minimum)

/** Whether a caller with `role` and identity `caller` may revoke a share link minted by `creator`. */
export const canRevokeShare = (role: Role, caller: string, creator: string): boolean =>
  can(role, "shares.revoke-any") || (can(role, "shares.revoke-own") && caller === creator)

/** Why a membership change is refused. */
export type MembershipRefusal = "NotOwner" | "LastOwner"

/**
 * Whether an actor with `actorRole` may change a membership of the workspace, where `targetRole` is the target's
 * role now (absent: not a member yet), `nextRole` the role after the change (absent: removal), and `owners` the
 * number of owners now. Only owners manage members, and the last owner can be neither demoted nor removed (the
 * workspace would be left with nobody who can manage it; the relay host can still add an owner).
 */
export const checkMembershipChange = (change: {
  readonly actorRole: Role | undefined
  readonly targetRole: Role | undefined
  readonly nextRole: Role | undefined
  readonly owners: number
}): Either.Either<void, MembershipRefusal> => {
  if (change.actorRole === undefined || !can(change.actorRole, "members.manage")) return Either.left("NotOwner")
  const losesOwner = change.targetRole === "owner" && change.nextRole !== "owner"
  if (losesOwner && change.owners <= 1) return Either.left("LastOwner")
  return Either.right(undefined)
}
