import * as Role from "@cmdop/accounts/Role"
import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

const roles = Role.Role.literals

describe("Role", () => {
  it("owner may do everything, member reaches machines and handles their own links, viewer only lists", () => {
    assert.isTrue(Role.can("owner", "keys.manage"))
    assert.isTrue(Role.can("owner", "members.manage"))
    assert.isTrue(Role.can("member", "machines.reach"))
    assert.isTrue(Role.can("member", "shares.mint"))
    assert.isFalse(Role.can("member", "keys.manage"))
    assert.isFalse(Role.can("member", "members.manage"))
    assert.isFalse(Role.can("member", "shares.revoke-any"))
    assert.isTrue(Role.can("viewer", "machines.list"))
    assert.isFalse(Role.can("viewer", "machines.reach"))
    assert.isFalse(Role.can("viewer", "shares.mint"))
  })

  it.prop(
    "a higher role can do everything a lower one can",
    [Schema.Literal(...roles), Schema.Literal(...roles)],
    ([a, b]) => {
      const actions: ReadonlyArray<Role.Action> = [
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
      ]
      if (Role.atLeast(a, b))
        for (const action of actions)
          if (Role.can(b, action)) assert.isTrue(Role.can(a, action), `${a} ⊇ ${b}: ${action}`)
    }
  )

  it("share links: members revoke their own, owners any, viewers none", () => {
    assert.isTrue(Role.canRevokeShare("member", "usr_a", "usr_a"))
    assert.isFalse(Role.canRevokeShare("member", "usr_a", "usr_b"))
    assert.isTrue(Role.canRevokeShare("owner", "usr_a", "usr_b"))
    assert.isFalse(Role.canRevokeShare("viewer", "usr_a", "usr_a"))
  })

  it("membership changes: only owners, never leaving the workspace without an owner", () => {
    const check = (
      actorRole: Role.Role | undefined,
      targetRole: Role.Role | undefined,
      nextRole: Role.Role | undefined,
      owners: number
    ) =>
      Either.match(Role.checkMembershipChange({ actorRole, targetRole, nextRole, owners }), {
        onLeft: (l) => l,
        onRight: () => "ok"
      })
    assert.strictEqual(check("owner", undefined, "member", 1), "ok")
    assert.strictEqual(check("member", undefined, "viewer", 1), "NotOwner")
    assert.strictEqual(check(undefined, "viewer", undefined, 1), "NotOwner")
    assert.strictEqual(check("owner", "owner", "member", 1), "LastOwner")
    assert.strictEqual(check("owner", "owner", undefined, 1), "LastOwner")
    assert.strictEqual(check("owner", "owner", "member", 2), "ok")
    assert.strictEqual(check("owner", "owner", "owner", 1), "ok")
    assert.strictEqual(check("owner", "member", undefined, 1), "ok")
  })
})
