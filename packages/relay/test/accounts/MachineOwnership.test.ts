/**
 * People's machines in the relay core (memory stores): a machine registered under a login belongs to that
 * person; registering it from another workspace moves it (same id, same name) only when the caller is its owner,
 * a member or owner there, and proves the machine secret; each registration and move is in the audit trail.
 */
import * as Accounts from "@cmdop/accounts/Accounts"
import * as AccountStore from "@cmdop/accounts/AccountStore"
import type { MachineIdentity } from "@cmdop/domain/AgentLink"
import * as Workspace from "@cmdop/domain/Workspace"
import type { Caller } from "@cmdop/relay/Authenticator"
import * as MachineOwnership from "../../src/internal/machineOwnership.js"
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

const identity = (secret: string): MachineIdentity => ({
  machineId: "5b6f2f0e-8a4c-4f0e-9d7a-2c1e3b4a5d6f",
  machineSecret: Redacted.make(secret),
  hostname: "laptop",
  name: "laptop",
  os: "linux",
  agentVersion: "test"
})

const SECRET = "machine-secret-0123456789abcdef"

describe("machines of people", () => {
  it.scoped("only the owner moves a machine, with its secret, into a workspace where they are a member", () =>
    Effect.gen(function* () {
      const accountContext = yield* Layer.build(AccountStore.layerMemory)
      const accountStore = Context.get(accountContext, AccountStore.AccountStore)
      const context = yield* Layer.build(
        RelayCore.layer({
          server: "relay.test:1",
          ownership: MachineOwnership.make(accountStore, "relay.test:1")
        }).pipe(Layer.provideMerge(ShareServiceLive.layer), Layer.provideMerge(RelayStore.layerMemory))
      )
      const core = Context.get(context, RelayCore.RelayCore)
      const store = Context.get(context, RelayStore.RelayStore)
      const accounts = yield* Effect.provide(
        Accounts.Accounts,
        Accounts.layer().pipe(Layer.provide(Layer.succeedContext(accountContext)))
      )
      const acme = (yield* store.createWorkspace(Workspace.WorkspaceName.make("acme"))).workspace
      const beta = (yield* store.createWorkspace(Workspace.WorkspaceName.make("beta"))).workspace
      const add = (email: string, ws: typeof acme, role: "owner" | "member" | "viewer") =>
        Effect.map(accounts.addMember({ actor: "relay-host", email, workspaceId: ws.id, role }), (a) => a.user)
      const alice = yield* add("alice@example.com", acme, "owner")
      yield* add("alice@example.com", beta, "member")
      const bob = yield* add("bob@example.com", beta, "owner")
      const caller = (user: typeof alice, ws: typeof acme, role: "owner" | "member" | "viewer"): Caller => ({
        credential: Redacted.make("cmdop_test"),
        workspaceId: ws.id,
        workspaceName: ws.name,
        kind: "user",
        principal: user.email,
        role,
        userId: user.id
      })

      const first = yield* core.register(caller(alice, acme, "owner"), identity(SECRET))
      assert.strictEqual(first.machine.workspaceId, acme.id)

      // Bob (an owner of beta) has the secret but does not own the machine: refused, nothing moves.
      const stolen = yield* Effect.flip(core.register(caller(bob, beta, "owner"), identity(SECRET)))
      assert.strictEqual(stolen._tag, "AccessError")
      assert.include(stolen.message, "only its owner can move it")
      // Alice as a viewer of beta may not register there; with a wrong secret she is refused too.
      const viewer = yield* Effect.flip(core.register(caller(alice, beta, "viewer"), identity(SECRET)))
      assert.include(viewer.message, "cannot register machines")
      const wrongSecret = yield* Effect.flip(
        core.register(caller(alice, beta, "member"), identity("another-secret-0123456789"))
      )
      assert.strictEqual(wrongSecret._tag, "AccessError")
      assert.strictEqual((yield* store.listMachines(acme.id)).length, 1)

      // Alice, a member of beta, moves it: same id and name; acme no longer lists it.
      const moved = yield* core.register(caller(alice, beta, "member"), identity(SECRET))
      assert.deepStrictEqual(
        [moved.machine.id, moved.machine.name, moved.machine.workspaceId],
        [first.machine.id, "laptop", beta.id]
      )
      assert.deepStrictEqual(yield* store.listMachines(acme.id), [])
      const trail = yield* accountStore.listAudit({ userId: alice.id })
      assert.deepStrictEqual(
        trail.filter((e) => e.subject === first.machine.id).map((e) => [e.action, e.workspaceId]),
        [
          ["machine.registered", acme.id],
          ["machine.migrated", beta.id]
        ]
      )
    })
  )
})
