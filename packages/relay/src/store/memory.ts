/**
 * The in-memory `RelayStore`, for tests and embedding: workspaces and machines here, API keys in `memoryKeys.ts`,
 * share links and signing keys in `memoryShares.ts`, over the one state of `memoryState.ts` (a failed call changes nothing).
 */
import { WorkspaceId } from "@cmdop/domain/Machine"
import type { WorkspaceName } from "@cmdop/domain/Workspace"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as MemoryKeys from "./memoryKeys.js"
import * as MemoryShares from "./memoryShares.js"
import { fail, machineById, makeDb, type MemoryDb, mintKey, online, updateMachine, withGate } from "./memoryState.js"
import {
  compare,
  DEFAULT_KEY_NAME,
  MachineRecord,
  machineClash,
  machineOrder,
  type MachineRegistration,
  toMachine,
  WorkspaceRecord
} from "./records.js"
import { newId } from "./secrets.js"
import { RelayStore } from "./service.js"

type Store = RelayStore["Type"]

/** Builds an in-memory store. */
export const make: Effect.Effect<Store> = Effect.map(makeDb, (db) =>
  RelayStore.of({
    ...workspaces(db),
    ...MemoryKeys.keys(db),
    ...machines(db),
    ...MemoryShares.signingKeys(db),
    ...MemoryShares.shareLinks(db)
  })
)

const workspaces = (db: MemoryDb) => {
  const { read } = db
  return {
    createWorkspace: (name: WorkspaceName) => createWorkspace(db, name),
    getWorkspace: (name) =>
      Effect.flatMap(read, (s) => {
        const found = s.workspaces.find((w) => w.name === name)
        return found ? Effect.succeed(found) : fail("WorkspaceNotFound", name)
      }),

    getWorkspaceById: (id) =>
      Effect.flatMap(read, (s) => {
        const found = s.workspaces.find((w) => w.id === id)
        return found ? Effect.succeed(found) : fail("WorkspaceNotFound", id)
      }),

    listWorkspaces: Effect.map(read, (s) => [...s.workspaces].sort((a, b) => compare(a.name, b.name))),

    currentKeyGeneration: (workspaceId) =>
      Effect.flatMap(read, (s) => {
        const found = s.workspaces.find((w) => w.id === workspaceId)
        return found ? Effect.succeed(found.keyGeneration) : fail("WorkspaceNotFound", workspaceId)
      })
  } satisfies Partial<Store>
}

const createWorkspace = (db: MemoryDb, name: WorkspaceName) =>
  db.update((s) =>
    Effect.gen(function* () {
      if (s.workspaces.some((w) => w.name === name)) return yield* fail("WorkspaceExists", name)
      const now = yield* Clock.currentTimeMillis
      const workspace = new WorkspaceRecord({
        id: WorkspaceId.make(newId("ws")),
        name,
        createdAt: now,
        keyGeneration: 1
      })
      const { apiKey, row: key } = mintKey(workspace.id, 1, now, DEFAULT_KEY_NAME)
      return [
        { workspace, apiKey },
        { ...s, workspaces: [...s.workspaces, workspace], keys: [...s.keys, key] }
      ] as const
    })
  )

const machines = (db: MemoryDb) => {
  const { read } = db
  return {
    registerMachine: (reg: MachineRegistration) => registerMachine(db, reg),
    getMachine: (id) =>
      Effect.flatMap(read, (s) => {
        const found = machineById(s, id)
        return found ? Effect.succeed(found) : fail("MachineNotFound", id)
      }),

    listMachines: (workspaceId) =>
      Effect.map(read, (s) =>
        s.machines
          .filter((m) => m.workspaceId === workspaceId)
          .sort(machineOrder)
          .map(toMachine)
      ),

    markOnline: (id, at, _connection, gateConfigured) =>
      updateMachine(db, id, (m) => withGate(online(m, at), gateConfigured)),
    setGateConfigured: (id, configured) => updateMachine(db, id, (m) => withGate(m, configured)),
    heartbeat: (id, at) => updateMachine(db, id, (m) => online(m, at)),
    heartbeats: (beats) =>
      db.update((s) => {
        const at = new Map(beats)
        return Effect.succeed([
          undefined,
          {
            ...s,
            machines: s.machines.map((m) => {
              const t = at.get(m.id)
              return t === undefined ? m : new MachineRecord({ ...m, lastHeartbeatAt: t })
            })
          }
        ] as const)
      }),
    markOffline: (id) => updateMachine(db, id, (m) => new MachineRecord({ ...m, online: false })),
    markAllOffline: db.update((s) =>
      Effect.succeed([
        undefined,
        { ...s, machines: s.machines.map((m) => (m.online ? new MachineRecord({ ...m, online: false }) : m)) }
      ] as const)
    ),
    removeMachine: (id) =>
      db.update((s) =>
        machineById(s, id) === undefined
          ? fail("MachineNotFound", id)
          : Effect.succeed([undefined, { ...s, machines: s.machines.filter((m) => m.id !== id) }] as const)
      )
  } satisfies Partial<Store>
}

const registerMachine = (db: MemoryDb, reg: MachineRegistration) =>
  db.update((s) =>
    Effect.gen(function* () {
      if (!s.workspaces.some((w) => w.id === reg.workspaceId)) {
        return yield* fail("WorkspaceNotFound", reg.workspaceId)
      }
      const existing = machineById(s, reg.id)
      if (existing !== undefined && existing.secretHash !== reg.secretHash) {
        return yield* fail("MachineSecretMismatch", reg.id)
      }
      const others = s.machines.filter((m) => m.workspaceId === reg.workspaceId && m.id !== reg.id)
      const conflict = machineClash(reg, others)
      if (conflict !== undefined) return yield* fail("MachineConflict", reg.id, { conflict })
      const record = new MachineRecord({
        id: reg.id,
        workspaceId: reg.workspaceId,
        hostname: reg.hostname,
        name: reg.name,
        os: reg.os,
        agentVersion: reg.agentVersion,
        secretHash: existing?.secretHash ?? reg.secretHash,
        online: existing?.online ?? false,
        ...(existing?.lastHeartbeatAt === undefined ? {} : { lastHeartbeatAt: existing.lastHeartbeatAt })
      })
      const machines =
        existing === undefined ? [...s.machines, record] : s.machines.map((m) => (m.id === reg.id ? record : m))
      return [record, { ...s, machines }] as const
    })
  )
