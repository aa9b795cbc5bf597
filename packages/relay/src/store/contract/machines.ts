/**
 * `RelayStore` contract: Machines: registration, uniqueness per workspace, moves between workspaces, online state, removal.
 */
import { MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { RelayStore } from "../service.js"
import {
  type ContractTest,
  failure,
  freshMachineId,
  freshName,
  freshSecretHash,
  registration,
  suffix
} from "./support.js"

const machinesAreScopedToTheirWorkspace = Effect.gen(function* () {
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

const registeringTheSameMachineAgainIs = Effect.gen(function* () {
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
  // A new agent version alone is written too.
  const upgraded = yield* store.registerMachine({ ...reg, agentVersion: "0.1.1" })
  assert.strictEqual(upgraded.agentVersion, "0.1.1")
  assert.deepStrictEqual(yield* store.getMachine(reg.id), upgraded)

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

const hostnamesInAnyCaseAndNames = Effect.gen(function* () {
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

/** Issue 9: a new machine whose hostname was another's display name took over `exec <that name>`. */
const namesAndHostnamesAreUniqueAcrossBoth = Effect.gen(function* () {
  const store = yield* RelayStore
  const ws = (yield* store.createWorkspace(freshName("names"))).workspace
  const web = yield* store.registerMachine(registration(ws.id, { hostname: "ip-10-0-0-7", name: "Web" }))
  const before = yield* store.listMachines(ws.id)

  // A hostname equal to another machine's display name (in any case) is refused, naming that machine and the fix.
  const hijack = registration(ws.id, { hostname: "web", name: "web" })
  const byHost = yield* failure(store.registerMachine(hijack), "MachineConflict")
  assert.deepStrictEqual(byHost.conflict, { field: "hostname", value: "web", machineId: web.id })
  assert.include(byHost.message, web.id)
  assert.include(byHost.message, "--name")
  assert.include(byHost.message, "--hostname")
  // A display name equal to another machine's hostname, or to its name in another case, likewise.
  const byName = yield* failure(
    store.registerMachine(registration(ws.id, { hostname: "elsewhere-1", name: "IP-10-0-0-7" })),
    "MachineConflict"
  )
  assert.deepStrictEqual(byName.conflict, { field: "name", value: "IP-10-0-0-7", machineId: web.id })
  assert.include(byName.message, "--name")
  const byNameCase = yield* failure(
    store.registerMachine(registration(ws.id, { hostname: "elsewhere-2", name: "WEB" })),
    "MachineConflict"
  )
  assert.deepStrictEqual(byNameCase.conflict, { field: "name", value: "WEB", machineId: web.id })
  assert.deepStrictEqual(yield* store.listMachines(ws.id), before)
  yield* failure(store.getMachine(hijack.id), "MachineNotFound")

  // A machine may re-register under its own name and hostname, and the clash is per workspace only.
  const again = yield* store.registerMachine(registration(ws.id, { ...web, hostname: "ip-10-0-0-7", name: "web" }))
  assert.strictEqual(again.name, "web")
  const other = (yield* store.createWorkspace(freshName("names-other"))).workspace
  const fine = yield* store.registerMachine(registration(other.id, { hostname: "web", name: "ip-10-0-0-7" }))
  assert.strictEqual(fine.hostname, "web")
})

const aWrongMachineSecretCanNeither = Effect.gen(function* () {
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

const aMachineThatProvesItsSecret = Effect.gen(function* () {
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

const onlineHeartbeatOfflineAndMarkalloffline = Effect.gen(function* () {
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

const heartbeatsAreWrittenInOneBatch = Effect.gen(function* () {
  const store = yield* RelayStore
  const ws = (yield* store.createWorkspace(freshName("beats"))).workspace
  const one = yield* store.registerMachine(registration(ws.id))
  const two = yield* store.registerMachine(registration(ws.id))
  const quiet = yield* store.registerMachine(registration(ws.id))
  yield* store.markOnline(one.id, 1_000)
  yield* store.markOnline(two.id, 2_000)
  yield* store.markOnline(quiet.id, 3_000)
  yield* store.markOffline(two.id)
  // An unknown machine (removed meanwhile) is skipped; an offline one keeps its state, with the time.
  yield* store.heartbeats([
    [one.id, 31_000],
    [two.id, 32_000],
    [freshMachineId(), 33_000]
  ])
  yield* store.heartbeats([])
  const state = (id: MachineId) =>
    Effect.map(store.getMachine(id), (m) => ({ online: m.online, lastHeartbeatAt: m.lastHeartbeatAt }))
  assert.deepStrictEqual(yield* state(one.id), { online: true, lastHeartbeatAt: 31_000 })
  assert.deepStrictEqual(yield* state(two.id), { online: false, lastHeartbeatAt: 32_000 })
  assert.deepStrictEqual(yield* state(quiet.id), { online: true, lastHeartbeatAt: 3_000 })
})

const unknownMachinesAreTypedErrors = Effect.gen(function* () {
  const store = yield* RelayStore
  const id = freshMachineId()
  const error = yield* failure(store.getMachine(id), "MachineNotFound")
  assert.include(error.message, "cmdop agent register")
  yield* failure(store.markOnline(id, 1), "MachineNotFound")
  yield* failure(store.heartbeat(id, 1), "MachineNotFound")
  yield* failure(store.markOffline(id), "MachineNotFound")
  yield* failure(store.removeMachine(id), "MachineNotFound")
})

const removemachineForgetsTheMachineAndFrees = Effect.gen(function* () {
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

/**
 * Names are compared lower-cased as JavaScript lower-cases them, whatever the database's own `lower` does (SQLite's
 * leaves non-ASCII letters alone); a renamed machine's old name is free at once, and its new one is taken.
 */
const namesClashInAnyCaseAndRenamesMoveTheKey = Effect.gen(function* () {
  const store = yield* RelayStore
  const ws = (yield* store.createWorkspace(freshName("name-case"))).workspace
  const eclair = yield* store.registerMachine(registration(ws.id, { name: "Éclair-Ärger" }))
  // A crowd the clash must be found in, whatever the store reads to find it.
  yield* Effect.forEach(
    Array.from({ length: 20 }, (_, i) => i),
    (i) => store.registerMachine(registration(ws.id, { name: `crowd-${i}` })),
    { discard: true }
  )
  const before = yield* store.listMachines(ws.id)
  for (const name of ["ÉCLAIR-ÄRGER", "éclair-ärger"]) {
    const clash = yield* failure(store.registerMachine(registration(ws.id, { name })), "MachineConflict")
    assert.deepStrictEqual(clash.conflict, { field: "name", value: name, machineId: eclair.id })
  }
  // Only the accents' case is folded, not the accents.
  const plain = yield* store.registerMachine(registration(ws.id, { name: "Eclair-Arger" }))
  assert.strictEqual(plain.name, "Eclair-Arger")
  assert.lengthOf(yield* store.listMachines(ws.id), before.length + 1)

  // The hostname is checked first: a registration clashing on both reports its hostname.
  const both = yield* failure(
    store.registerMachine(registration(ws.id, { hostname: plain.hostname.toUpperCase(), name: "ÉCLAIR-ärger" })),
    "MachineConflict"
  )
  assert.deepStrictEqual(both.conflict, {
    field: "hostname",
    value: plain.hostname.toUpperCase(),
    machineId: plain.id
  })

  // Renamed, the machine frees its old name (in any case) and holds its new one.
  yield* store.registerMachine({ ...eclair, name: "Millefeuille" })
  const successor = yield* store.registerMachine(registration(ws.id, { name: "ÉCLAIR-ärger" }))
  assert.strictEqual(successor.name, "ÉCLAIR-ärger")
  const taken = yield* failure(store.registerMachine(registration(ws.id, { name: "MILLEFEUILLE" })), "MachineConflict")
  assert.deepStrictEqual(taken.conflict, { field: "name", value: "MILLEFEUILLE", machineId: eclair.id })
  // And a hostname equal to the new name in another case is refused too.
  const byHost = yield* failure(
    store.registerMachine(registration(ws.id, { hostname: "millefeuille" })),
    "MachineConflict"
  )
  assert.deepStrictEqual(byHost.conflict, { field: "hostname", value: "millefeuille", machineId: eclair.id })
})

/** The tests of this part, as (title, test) pairs. */
/**
 * What an agent says of its gate is stored with the machine (every relay node of a cluster lists it, not only the
 * one holding the agent's stream), and listed while the machine is online.
 */
const whatTheAgentSaysOfItsGateIsStored = Effect.gen(function* () {
  const store = yield* RelayStore
  const ws = (yield* store.createWorkspace(freshName("gate"))).workspace
  const gated = yield* store.registerMachine(registration(ws.id))
  const open = yield* store.registerMachine(registration(ws.id))
  const silent = yield* store.registerMachine(registration(ws.id))
  const listed = () =>
    Effect.map(store.listMachines(ws.id), (all) => new Map(all.map((m) => [m.id, m.gateConfigured] as const)))

  yield* store.markOnline(gated.id, 1_000, undefined, true)
  yield* store.markOnline(open.id, 1_000, undefined, false)
  yield* store.markOnline(silent.id, 1_000)
  let seen = yield* listed()
  assert.deepStrictEqual([seen.get(gated.id), seen.get(open.id), seen.get(silent.id)], [true, false, undefined])
  assert.isTrue((yield* store.getMachine(gated.id)).gateConfigured)

  // The permissions file went, then came back on another machine: each change is stored.
  yield* store.setGateConfigured(gated.id, false)
  yield* store.setGateConfigured(open.id, true)
  seen = yield* listed()
  assert.deepStrictEqual([seen.get(gated.id), seen.get(open.id)], [false, true])

  // Offline: not listed (it is what a running agent says); its next connect says it again, or clears it.
  yield* store.markOffline(open.id)
  seen = yield* listed()
  assert.isUndefined(seen.get(open.id))
  yield* store.markOnline(open.id, 2_000)
  assert.isUndefined((yield* listed()).get(open.id))
  yield* failure(store.setGateConfigured(freshMachineId(), true), "MachineNotFound")
})

export const tests: ReadonlyArray<ContractTest> = [
  ["what an agent says of its gate is stored and listed while online", whatTheAgentSaysOfItsGateIsStored],
  ["machines are scoped to their workspace", machinesAreScopedToTheirWorkspace],
  ["registering the same machine again is idempotent and updates it", registeringTheSameMachineAgainIs],
  ["hostnames (in any case) and names are unique per workspace", hostnamesInAnyCaseAndNames],
  [
    "names and hostnames are unique across both per workspace (no name means two machines)",
    namesAndHostnamesAreUniqueAcrossBoth
  ],
  ["a wrong machine secret can neither re-register nor move a machine", aWrongMachineSecretCanNeither],
  ["a machine that proves its secret moves to another workspace", aMachineThatProvesItsSecret],
  ["online, heartbeat, offline and markAllOffline", onlineHeartbeatOfflineAndMarkalloffline],
  ["heartbeats of many machines are written in one batch", heartbeatsAreWrittenInOneBatch],
  ["unknown machines are typed errors", unknownMachinesAreTypedErrors],
  ["removeMachine forgets the machine and frees its names", removemachineForgetsTheMachineAndFrees],
  ["names clash in any case (non-ASCII too), and a rename frees the old name", namesClashInAnyCaseAndRenamesMoveTheKey]
]
