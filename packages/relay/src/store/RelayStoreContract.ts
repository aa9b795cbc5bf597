/**
 * The behaviour every `RelayStore` layer must have, as one suite run once per implementation. Each test makes
 * its own workspaces and machines with random names, because a SQL layer is shared by every test of a file.
 */
import * as ApiKey from "@cmdop/domain/ApiKey"
import { MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { randomBytes, randomUUID } from "node:crypto"
import type { MachineRegistration } from "./records.js"
import type { RelayStoreError } from "./RelayStoreError.js"
import { RelayStore } from "./service.js"

const suffix = () => randomBytes(4).toString("hex")
const freshName = (label: string) => WorkspaceName.make(`${label}-${suffix()}`)
const freshMachineId = () => MachineId.make(randomUUID())
const freshSecretHash = () => randomBytes(32).toString("hex")

const registration = (workspaceId: WorkspaceId, overrides: Partial<MachineRegistration> = {}): MachineRegistration => {
  const host = `host-${suffix()}`
  return {
    id: freshMachineId(),
    workspaceId,
    hostname: host,
    name: host,
    os: "linux",
    agentVersion: "0.1.0",
    secretHash: freshSecretHash(),
    ...overrides
  }
}

/** The failure of `effect`, asserting it has the expected reason. */
const failure = <A>(effect: Effect.Effect<A, RelayStoreError>, reason: RelayStoreError["reason"]) =>
  Effect.map(Effect.flip(effect), (error) => {
    assert.strictEqual(error._tag, "RelayStoreError")
    assert.strictEqual(error.reason, reason, error.message)
    return error
  })

const some = <A>(option: Option.Option<A>): A => {
  assert.isTrue(Option.isSome(option), "expected Some, got None")
  return Option.getOrThrow(option)
}

/** Runs the contract suite against `storeLayer`, which is built once and shared by every test. */
export const relayStoreContract = (name: string, storeLayer: Layer.Layer<RelayStore, unknown>) =>
  layer(storeLayer, { timeout: "30 seconds" })(`RelayStore contract (${name})`, (it) => {
    it.effect("createWorkspace returns a key that authenticates, and stores only its hash", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const name = freshName("acme")
        const { apiKey, workspace } = yield* store.createWorkspace(name)
        assert.strictEqual(workspace.name, name)
        assert.isTrue(workspace.id.startsWith("ws_"))
        assert.strictEqual(workspace.keyGeneration, 1)
        assert.match(Redacted.value(apiKey), ApiKey.ApiKeyPattern)
        assert.notInclude(String(apiKey), Redacted.value(apiKey))

        const identity = some(yield* store.authenticateKey(apiKey))
        assert.strictEqual(identity.workspaceId, workspace.id)
        assert.strictEqual(identity.workspaceName, name)
        assert.strictEqual(identity.generation, 1)
        assert.isTrue(identity.keyId.length > 0)

        assert.deepStrictEqual(yield* store.getWorkspace(name), workspace)
        assert.deepStrictEqual(
          (yield* store.listWorkspaces).filter((w) => w.name === name),
          [workspace]
        )
        assert.strictEqual(yield* store.currentKeyGeneration(workspace.id), 1)
        assert.isTrue(Option.isNone(yield* store.authenticateKey(ApiKey.generate())))
        assert.isTrue(Option.isNone(yield* store.authenticateKey(Redacted.make(""))))
      })
    )

    it.effect("a duplicate workspace name fails and changes nothing", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const name = freshName("dup")
        const first = yield* store.createWorkspace(name)
        const before = yield* store.listWorkspaces
        const error = yield* failure(store.createWorkspace(name), "WorkspaceExists")
        assert.include(error.message, name)
        assert.deepStrictEqual(yield* store.listWorkspaces, before)
        const identity = some(yield* store.authenticateKey(first.apiKey))
        assert.strictEqual(identity.workspaceId, first.workspace.id)
        assert.strictEqual(yield* store.currentKeyGeneration(first.workspace.id), 1)
      })
    )

    it.effect("concurrent creates and rotations serialise", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const name = freshName("race")
        const results = yield* Effect.all(
          Array.from({ length: 6 }, () => Effect.either(store.createWorkspace(name))),
          { concurrency: "unbounded" }
        )
        const created = results.filter((r) => r._tag === "Right")
        assert.lengthOf(created, 1)
        for (const r of results) {
          if (r._tag === "Left") assert.strictEqual(r.left.reason, "WorkspaceExists")
        }

        const keys = yield* Effect.all(
          Array.from({ length: 5 }, () => store.rotateKey(name)),
          { concurrency: "unbounded" }
        )
        const workspace = yield* store.getWorkspace(name)
        assert.strictEqual(workspace.keyGeneration, 6)
        const live = yield* Effect.forEach(keys, (key) => store.authenticateKey(key))
        assert.lengthOf(live.filter(Option.isSome), 1)
        assert.strictEqual(some(live.find(Option.isSome) ?? Option.none()).generation, 6)
      })
    )

    it.effect("unknown workspaces are typed errors", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const name = freshName("missing")
        const error = yield* failure(store.getWorkspace(name), "WorkspaceNotFound")
        assert.include(error.message, "cmdop relay workspace create")
        yield* failure(store.rotateKey(name), "WorkspaceNotFound")
        yield* failure(store.currentKeyGeneration(WorkspaceId.make(`ws_${suffix()}`)), "WorkspaceNotFound")
        yield* failure(store.registerMachine(registration(WorkspaceId.make(`ws_${suffix()}`))), "WorkspaceNotFound")
        assert.isFalse((yield* store.listWorkspaces).some((w) => w.name === name))
      })
    )

    it.effect("rotateKey retires the old key and raises the generation", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const name = freshName("rot")
        const other = yield* store.createWorkspace(freshName("bystander"))
        const { apiKey: first, workspace } = yield* store.createWorkspace(name)

        const second = yield* store.rotateKey(name)
        assert.notStrictEqual(Redacted.value(second), Redacted.value(first))
        assert.isTrue(Option.isNone(yield* store.authenticateKey(first)))
        const identity = some(yield* store.authenticateKey(second))
        assert.strictEqual(identity.workspaceId, workspace.id)
        assert.strictEqual(identity.generation, 2)
        assert.strictEqual(yield* store.currentKeyGeneration(workspace.id), 2)

        const third = yield* store.rotateKey(name)
        assert.isTrue(Option.isNone(yield* store.authenticateKey(first)))
        assert.isTrue(Option.isNone(yield* store.authenticateKey(second)))
        assert.strictEqual(some(yield* store.authenticateKey(third)).generation, 3)
        assert.strictEqual((yield* store.getWorkspace(name)).keyGeneration, 3)

        // Another workspace's key is untouched.
        assert.strictEqual(some(yield* store.authenticateKey(other.apiKey)).workspaceId, other.workspace.id)
        assert.strictEqual(yield* store.currentKeyGeneration(other.workspace.id), 1)
      })
    )

    it.effect("machines are scoped to their workspace", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const a = (yield* store.createWorkspace(freshName("tenant-a"))).workspace
        const b = (yield* store.createWorkspace(freshName("tenant-b"))).workspace
        const a1 = yield* store.registerMachine(registration(a.id, { hostname: "web-1", name: "web" }))
        const a2 = yield* store.registerMachine(registration(a.id))
        // The same hostname and name are fine in another workspace.
        const b1 = yield* store.registerMachine(registration(b.id, { hostname: "web-1", name: "web" }))

        const listA = yield* store.listMachines(a.id)
        const listB = yield* store.listMachines(b.id)
        assert.sameMembers(
          listA.map((m) => m.id),
          [a1.id, a2.id]
        )
        assert.deepStrictEqual(
          listB.map((m) => m.id),
          [b1.id]
        )
        assert.isTrue(listA.every((m) => m.workspaceId === a.id))
        assert.isTrue(listB.every((m) => m.workspaceId === b.id))
        assert.isTrue([...listA, ...listB].every((m) => !("secretHash" in m)))
        assert.deepStrictEqual(yield* store.listMachines(WorkspaceId.make(`ws_${suffix()}`)), [])
      })
    )

    it.effect("registering the same machine again is idempotent and updates it", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const ws = (yield* store.createWorkspace(freshName("idem"))).workspace
        const reg = registration(ws.id)
        const first = yield* store.registerMachine(reg)
        assert.strictEqual(first.id, reg.id)
        assert.strictEqual(first.workspaceId, ws.id)
        assert.strictEqual(first.secretHash, reg.secretHash)
        assert.isFalse(first.online)
        assert.isUndefined(first.lastHeartbeatAt)

        const again = yield* store.registerMachine(reg)
        assert.deepStrictEqual(again, first)
        assert.lengthOf(yield* store.listMachines(ws.id), 1)

        yield* store.markOnline(reg.id, 1_000)
        const renamed = {
          ...reg,
          hostname: `renamed-${suffix()}`,
          name: "renamed",
          os: "darwin",
          agentVersion: "0.2.0"
        }
        const updated = yield* store.registerMachine(renamed)
        assert.strictEqual(updated.hostname, renamed.hostname)
        assert.strictEqual(updated.name, "renamed")
        assert.strictEqual(updated.os, "darwin")
        assert.strictEqual(updated.agentVersion, "0.2.0")
        assert.isTrue(updated.online, "re-registering keeps the online state")
        assert.strictEqual(updated.lastHeartbeatAt, 1_000)
        assert.deepStrictEqual(yield* store.getMachine(reg.id), updated)
        const listed = yield* store.listMachines(ws.id)
        assert.lengthOf(listed, 1)
        assert.strictEqual(listed[0]!.hostname, renamed.hostname)
      })
    )

    it.effect("hostnames (in any case) and names are unique per workspace", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const ws = (yield* store.createWorkspace(freshName("conflict"))).workspace
        const taken = yield* store.registerMachine(registration(ws.id, { hostname: "Build-Box", name: "builder" }))
        const before = yield* store.listMachines(ws.id)

        const byHost = yield* failure(
          store.registerMachine(registration(ws.id, { hostname: "build-box", name: "other" })),
          "MachineConflict"
        )
        assert.deepStrictEqual(byHost.conflict, { field: "hostname", value: "build-box", machineId: taken.id })
        assert.include(byHost.message, taken.id)
        assert.include(byHost.message, "--hostname")

        const second = registration(ws.id, { hostname: "elsewhere", name: "builder" })
        const byName = yield* failure(store.registerMachine(second), "MachineConflict")
        assert.deepStrictEqual(byName.conflict, { field: "name", value: "builder", machineId: taken.id })

        assert.deepStrictEqual(yield* store.listMachines(ws.id), before)
        yield* failure(store.getMachine(second.id), "MachineNotFound")

        // An existing machine cannot take another's hostname by re-registering either.
        const mover = yield* store.registerMachine(registration(ws.id))
        yield* failure(store.registerMachine({ ...mover, hostname: "BUILD-BOX" }), "MachineConflict")
        assert.deepStrictEqual(yield* store.getMachine(mover.id), mover)
      })
    )

    it.effect("a wrong machine secret can neither re-register nor move a machine", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const a = (yield* store.createWorkspace(freshName("secret-a"))).workspace
        const b = (yield* store.createWorkspace(freshName("secret-b"))).workspace
        const reg = registration(a.id)
        const stored = yield* store.registerMachine(reg)

        const forged = { ...reg, hostname: `forged-${suffix()}`, secretHash: freshSecretHash() }
        const error = yield* failure(store.registerMachine(forged), "MachineSecretMismatch")
        assert.include(error.message, reg.id)
        assert.notInclude(error.message, reg.secretHash)
        assert.notInclude(error.message, forged.secretHash)
        assert.deepStrictEqual(yield* store.getMachine(reg.id), stored)

        yield* failure(store.registerMachine({ ...forged, workspaceId: b.id }), "MachineSecretMismatch")
        assert.deepStrictEqual(yield* store.getMachine(reg.id), stored)
        assert.deepStrictEqual(yield* store.listMachines(b.id), [])
        assert.lengthOf(yield* store.listMachines(a.id), 1)
      })
    )

    it.effect("a machine that proves its secret moves to another workspace", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const a = (yield* store.createWorkspace(freshName("move-a"))).workspace
        const b = (yield* store.createWorkspace(freshName("move-b"))).workspace
        const reg = registration(a.id)
        yield* store.registerMachine(reg)
        yield* store.markOnline(reg.id, 5_000)

        const moved = yield* store.registerMachine({ ...reg, workspaceId: b.id })
        assert.strictEqual(moved.workspaceId, b.id)
        assert.strictEqual((yield* store.getMachine(reg.id)).workspaceId, b.id)
        assert.deepStrictEqual(yield* store.listMachines(a.id), [])
        assert.deepStrictEqual(
          (yield* store.listMachines(b.id)).map((m) => m.id),
          [reg.id]
        )
        assert.isTrue(moved.online)

        // Moving into a workspace where the hostname is taken fails and leaves the machine where it was.
        const c = (yield* store.createWorkspace(freshName("move-c"))).workspace
        yield* store.registerMachine(registration(c.id, { hostname: reg.hostname.toUpperCase(), name: "squatter" }))
        yield* failure(store.registerMachine({ ...reg, workspaceId: c.id }), "MachineConflict")
        assert.strictEqual((yield* store.getMachine(reg.id)).workspaceId, b.id)
        assert.lengthOf(yield* store.listMachines(c.id), 1)
      })
    )

    it.effect("online, heartbeat, offline and markAllOffline", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const ws = (yield* store.createWorkspace(freshName("presence"))).workspace
        const one = yield* store.registerMachine(registration(ws.id))
        const two = yield* store.registerMachine(registration(ws.id))
        const state = (id: MachineId) =>
          Effect.map(store.getMachine(id), (m) => ({ online: m.online, lastHeartbeatAt: m.lastHeartbeatAt }))

        yield* store.markOnline(one.id, 1_700_000_000_000)
        assert.deepStrictEqual(yield* state(one.id), { online: true, lastHeartbeatAt: 1_700_000_000_000 })
        yield* store.heartbeat(one.id, 1_700_000_030_000)
        assert.deepStrictEqual(yield* state(one.id), { online: true, lastHeartbeatAt: 1_700_000_030_000 })
        const listed = (yield* store.listMachines(ws.id)).find((m) => m.id === one.id)
        assert.strictEqual(listed?.online, true)
        assert.strictEqual(listed?.lastHeartbeatAt, 1_700_000_030_000)

        yield* store.markOffline(one.id)
        assert.deepStrictEqual(yield* state(one.id), { online: false, lastHeartbeatAt: 1_700_000_030_000 })

        yield* store.markOnline(one.id, 1_700_000_060_000)
        yield* store.markOnline(two.id, 1_700_000_061_000)
        yield* store.markAllOffline
        assert.deepStrictEqual(yield* state(one.id), { online: false, lastHeartbeatAt: 1_700_000_060_000 })
        assert.deepStrictEqual(yield* state(two.id), { online: false, lastHeartbeatAt: 1_700_000_061_000 })
        assert.isTrue((yield* store.listMachines(ws.id)).every((m) => !m.online))
      })
    )

    it.effect("unknown machines are typed errors", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const id = freshMachineId()
        const error = yield* failure(store.getMachine(id), "MachineNotFound")
        assert.include(error.message, "cmdop agent register")
        yield* failure(store.markOnline(id, 1), "MachineNotFound")
        yield* failure(store.heartbeat(id, 1), "MachineNotFound")
        yield* failure(store.markOffline(id), "MachineNotFound")
        yield* failure(store.removeMachine(id), "MachineNotFound")
      })
    )

    it.effect("removeMachine forgets the machine and frees its names", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const ws = (yield* store.createWorkspace(freshName("remove"))).workspace
        const gone = yield* store.registerMachine(registration(ws.id, { hostname: "reused", name: "reused" }))
        const kept = yield* store.registerMachine(registration(ws.id))
        yield* store.removeMachine(gone.id)
        yield* failure(store.getMachine(gone.id), "MachineNotFound")
        assert.deepStrictEqual(
          (yield* store.listMachines(ws.id)).map((m) => m.id),
          [kept.id]
        )
        yield* failure(store.removeMachine(gone.id), "MachineNotFound")
        const successor = yield* store.registerMachine(registration(ws.id, { hostname: "REUSED", name: "reused" }))
        assert.strictEqual((yield* store.getMachine(successor.id)).hostname, "REUSED")
      })
    )

    it.effect("signing keys: add, current, retire, list", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        // Later than anything earlier tests created, so these keys are the newest.
        yield* TestClock.adjust("1000 days")
        const k1 = {
          kid: `k1-${suffix()}`,
          algorithm: "HS256",
          material: Redacted.make(randomBytes(32).toString("hex"))
        }
        const k2 = {
          kid: `k2-${suffix()}`,
          algorithm: "HS256",
          material: Redacted.make(randomBytes(32).toString("hex"))
        }

        const added1 = yield* store.addSigningKey(k1)
        assert.strictEqual(added1.kid, k1.kid)
        assert.strictEqual(Redacted.value(added1.material), Redacted.value(k1.material))
        assert.isUndefined(added1.retiredAt)
        assert.strictEqual(some(yield* store.currentSigningKey).kid, k1.kid)

        yield* TestClock.adjust("1 second")
        const added2 = yield* store.addSigningKey(k2)
        assert.isTrue(added2.createdAt > added1.createdAt)
        const current = some(yield* store.currentSigningKey)
        assert.strictEqual(current.kid, k2.kid)
        assert.strictEqual(Redacted.value(current.material), Redacted.value(k2.material))

        const duplicate = yield* failure(
          store.addSigningKey({ ...k1, material: Redacted.make("other") }),
          "SigningKeyExists"
        )
        assert.notInclude(duplicate.message, Redacted.value(k1.material))
        assert.strictEqual(
          Redacted.value((yield* store.listSigningKeys).find((k) => k.kid === k1.kid)!.material),
          Redacted.value(k1.material)
        )

        yield* TestClock.adjust("1 second")
        yield* store.retireSigningKey(k2.kid)
        assert.strictEqual(some(yield* store.currentSigningKey).kid, k1.kid)
        const retired = (yield* store.listSigningKeys).find((k) => k.kid === k2.kid)
        assert.isDefined(retired?.retiredAt)
        yield* store.retireSigningKey(k2.kid)
        assert.strictEqual((yield* store.listSigningKeys).find((k) => k.kid === k2.kid)?.retiredAt, retired?.retiredAt)

        const listed = (yield* store.listSigningKeys).filter((k) => k.kid === k1.kid || k.kid === k2.kid)
        assert.deepStrictEqual(
          listed.map((k) => k.kid),
          [k1.kid, k2.kid]
        )
        yield* failure(store.retireSigningKey(`missing-${suffix()}`), "SigningKeyNotFound")
        yield* store.retireSigningKey(k1.kid)
        assert.isFalse(Option.exists(yield* store.currentSigningKey, (k) => k.kid === k1.kid || k.kid === k2.kid))
      })
    )

    it.effect("share links: create, get, list, use, events, revoke, expiry once", () =>
      Effect.gen(function* () {
        const store = yield* RelayStore
        const ws = (yield* store.createWorkspace(freshName("shares"))).workspace
        const other = (yield* store.createWorkspace(freshName("shares-other"))).workspace
        assert.deepStrictEqual(yield* store.getWorkspaceById(ws.id), ws)
        yield* failure(store.getWorkspaceById(WorkspaceId.make(`ws_missing_${suffix()}`)), "WorkspaceNotFound")
        const m1 = yield* store.registerMachine(registration(ws.id))
        const m2 = yield* store.registerMachine(registration(ws.id))
        const newLink = (machine: typeof m1, createdAt: number, expiresAt?: number) => ({
          id: `sl_${randomBytes(12).toString("hex")}`,
          workspaceId: machine.workspaceId,
          machineId: machine.id,
          machineHostname: machine.hostname,
          creator: "ck_live_abcd",
          createdAt,
          keyGeneration: 1,
          ...(expiresAt === undefined ? {} : { expiresAt })
        })

        const a = newLink(m1, 1_000, 3_601_000)
        const created = yield* store.createShareLink(a, "created by ck_live_abcd")
        assert.strictEqual(created.id, a.id)
        assert.strictEqual(created.machineHostname, m1.hostname)
        assert.strictEqual(created.expiresAt, 3_601_000)
        assert.strictEqual(created.useCount, 0)
        assert.isUndefined(created.revokedAt)
        assert.isUndefined(created.lastUsedAt)
        assert.strictEqual(created.keyGeneration, 1)
        assert.deepStrictEqual(
          created.events.map((e) => [e.kind, e.detail, e.at]),
          [["created", "created by ck_live_abcd", 1_000]]
        )
        assert.deepStrictEqual(some(yield* store.getShareLink(a.id)), created)
        yield* failure(store.createShareLink(a, "again"), "ShareLinkExists")

        const b = newLink(m2, 2_000)
        const forever = yield* store.createShareLink(b, "never expires")
        assert.isUndefined(forever.expiresAt)
        assert.deepStrictEqual(
          (yield* store.listShareLinks(ws.id)).map((l) => l.id),
          [a.id, b.id]
        )
        assert.deepStrictEqual(
          (yield* store.listShareLinks(ws.id, m2.id)).map((l) => l.id),
          [b.id]
        )
        assert.deepStrictEqual(yield* store.listShareLinks(other.id), [])

        yield* store.recordShareUse(a.id, 5_000, "exec uptime")
        yield* store.recordShareUse(a.id, 6_000, "attach")
        yield* store.addShareEvent(a.id, { kind: "denied", detail: "machine offline", at: 7_000 })
        const used = some(yield* store.getShareLink(a.id))
        assert.strictEqual(used.useCount, 2)
        assert.strictEqual(used.lastUsedAt, 6_000)

        // `expired` once, however often (and at whatever time) it is noticed; events come back in time order.
        assert.isTrue(yield* store.markShareExpired(a.id, { detail: "expired", at: 3_601_000 }))
        assert.isFalse(yield* store.markShareExpired(a.id, { detail: "expired again", at: 3_601_000 }))
        const revoked = yield* store.revokeShareLink(a.id, 9_000_000, "revoked")
        assert.strictEqual(revoked.revokedAt, 9_000_000)
        const again = yield* store.revokeShareLink(a.id, 9_500_000, "revoked twice")
        assert.strictEqual(again.revokedAt, 9_000_000)
        assert.deepStrictEqual(
          again.events.map((e) => [e.kind, e.at]),
          [
            ["created", 1_000],
            ["used", 5_000],
            ["used", 6_000],
            ["denied", 7_000],
            ["expired", 3_601_000],
            ["revoked", 9_000_000]
          ]
        )
        assert.deepStrictEqual(
          (yield* store.listShareLinks(ws.id)).find((l) => l.id === a.id),
          again
        )
        // The other link's trail is its own.
        assert.deepStrictEqual(
          some(yield* store.getShareLink(b.id)).events.map((e) => e.kind),
          ["created"]
        )

        const missing = `sl_${randomBytes(12).toString("hex")}`
        assert.isTrue(Option.isNone(yield* store.getShareLink(missing)))
        yield* failure(store.revokeShareLink(missing, 1, "x"), "ShareLinkNotFound")
        yield* failure(store.recordShareUse(missing, 1, "x"), "ShareLinkNotFound")
        yield* failure(store.addShareEvent(missing, { kind: "denied", detail: "x", at: 1 }), "ShareLinkNotFound")
        yield* failure(store.markShareExpired(missing, { detail: "x", at: 1 }), "ShareLinkNotFound")
      })
    )
  })
