/**
 * The in-memory `RelayStore`: one immutable state in a `Ref`, every change computed under a lock and written
 * only when the whole operation succeeds, so a failed call changes nothing. For tests and embedding.
 */
import * as ApiKey from "@cmdop/domain/ApiKey"
import type { MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import { ShareEvent } from "@cmdop/domain/ShareLink"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import {
  compare,
  KeyIdentity,
  MachineRecord,
  machineOrder,
  type NewShareEvent,
  shareEventOrder,
  ShareLinkRecord,
  shareLinkOrder,
  SigningKey,
  signingKeyOrder,
  toMachine,
  WorkspaceRecord
} from "./records.js"
import { type MachineConflict, RelayStoreError } from "./RelayStoreError.js"
import { hashKey, newId } from "./secrets.js"
import { RelayStore } from "./service.js"

interface KeyRow {
  readonly id: string
  readonly workspaceId: WorkspaceId
  readonly hash: string
  readonly prefix: string
  readonly generation: number
  readonly createdAt: number
  readonly retiredAt: number | undefined
}

/** A fresh API key for a workspace and the row that stores it (hash and prefix only). */
const mintKey = (workspaceId: WorkspaceId, generation: number, now: number) => {
  const apiKey = ApiKey.generate()
  const row: KeyRow = {
    id: newId("key"),
    workspaceId,
    hash: hashKey(apiKey),
    prefix: ApiKey.prefixOf(apiKey),
    generation,
    createdAt: now,
    retiredAt: undefined
  }
  return { apiKey, row }
}

/** A share link without its events; `expiryRecorded`: its `expired` event exists. */
interface LinkRow {
  readonly record: ShareLinkRecord
  readonly expiryRecorded: boolean
}

interface EventRow {
  readonly linkId: string
  readonly seq: number
  readonly event: ShareEvent
}

interface State {
  readonly workspaces: ReadonlyArray<WorkspaceRecord>
  readonly keys: ReadonlyArray<KeyRow>
  readonly machines: ReadonlyArray<MachineRecord>
  readonly signingKeys: ReadonlyArray<SigningKey>
  readonly links: ReadonlyArray<LinkRow>
  readonly events: ReadonlyArray<EventRow>
}

const empty: State = { workspaces: [], keys: [], machines: [], signingKeys: [], links: [], events: [] }

/** The link with its events, in time order. */
const withEvents = (s: State, row: LinkRow): ShareLinkRecord =>
  new ShareLinkRecord({
    ...row.record,
    events: s.events
      .filter((e) => e.linkId === row.record.id)
      .sort(shareEventOrder)
      .map((e) => e.event)
  })

const appendEvent = (s: State, linkId: string, event: NewShareEvent): ReadonlyArray<EventRow> => [
  ...s.events,
  { linkId, seq: s.events.length, event: new ShareEvent(event) }
]

const fail = (
  reason: RelayStoreError["reason"],
  subject: string,
  extra: { readonly conflict?: MachineConflict } = {}
) => Effect.fail(new RelayStoreError({ reason, subject, ...extra }))

/** Builds an in-memory store. */
export const make: Effect.Effect<RelayStore["Type"]> = Effect.gen(function* () {
  const state = yield* Ref.make(empty)
  const lock = yield* Effect.makeSemaphore(1)

  const read = Ref.get(state)
  /** Runs `f` on the current state under the lock; its new state is stored only when it succeeds. */
  const update = <A>(f: (s: State) => Effect.Effect<readonly [A, State], RelayStoreError>) =>
    lock.withPermits(1)(Effect.flatMap(read, f).pipe(Effect.flatMap(([a, next]) => Effect.as(Ref.set(state, next), a))))

  const machineById = (s: State, id: MachineId) => s.machines.find((m) => m.id === id)
  const updateMachine = (id: MachineId, f: (m: MachineRecord) => MachineRecord) =>
    update((s) => {
      const found = machineById(s, id)
      return found === undefined
        ? fail("MachineNotFound", id)
        : Effect.succeed([undefined, { ...s, machines: s.machines.map((m) => (m.id === id ? f(m) : m)) }] as const)
    })
  const replaceLink = (s: State, row: LinkRow) => s.links.map((l) => (l.record.id === row.record.id ? row : l))
  /** Applies `f` to the link's row; yields the row as it was and the new state. */
  const updateLink = (id: string, f: (row: LinkRow, s: State) => State) =>
    update((s) => {
      const row = s.links.find((l) => l.record.id === id)
      if (row === undefined) return fail("ShareLinkNotFound", id)
      const next = f(row, s)
      return Effect.succeed([[row, next] as const, next] as const)
    })
  const online = (m: MachineRecord, at: number) => new MachineRecord({ ...m, online: true, lastHeartbeatAt: at })

  return RelayStore.of({
    createWorkspace: (name) =>
      update((s) =>
        Effect.gen(function* () {
          if (s.workspaces.some((w) => w.name === name)) return yield* fail("WorkspaceExists", name)
          const now = yield* Clock.currentTimeMillis
          const workspace = new WorkspaceRecord({
            id: newId("ws") as WorkspaceId,
            name,
            createdAt: now,
            keyGeneration: 1
          })
          const { apiKey, row: key } = mintKey(workspace.id, 1, now)
          return [
            { workspace, apiKey },
            { ...s, workspaces: [...s.workspaces, workspace], keys: [...s.keys, key] }
          ] as const
        })
      ),

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

    rotateKey: (workspaceName) =>
      update((s) =>
        Effect.gen(function* () {
          const found = s.workspaces.find((w) => w.name === workspaceName)
          if (found === undefined) return yield* fail("WorkspaceNotFound", workspaceName)
          const now = yield* Clock.currentTimeMillis
          const workspace = new WorkspaceRecord({ ...found, keyGeneration: found.keyGeneration + 1 })
          const { apiKey, row: key } = mintKey(workspace.id, workspace.keyGeneration, now)
          const retired = s.keys.map((k) =>
            k.workspaceId === workspace.id && k.retiredAt === undefined ? { ...k, retiredAt: now } : k
          )
          return [
            apiKey,
            {
              ...s,
              workspaces: s.workspaces.map((w) => (w.id === workspace.id ? workspace : w)),
              keys: [...retired, key]
            }
          ] as const
        })
      ),

    authenticateKey: (rawKey) =>
      Effect.map(read, (s) => {
        const hash = hashKey(rawKey)
        const key = s.keys.find((k) => k.hash === hash && k.retiredAt === undefined)
        const workspace = key && s.workspaces.find((w) => w.id === key.workspaceId)
        return key && workspace && key.generation === workspace.keyGeneration
          ? Option.some(
              new KeyIdentity({
                workspaceId: workspace.id,
                workspaceName: workspace.name,
                keyId: key.id,
                generation: key.generation
              })
            )
          : Option.none()
      }),

    currentKeyGeneration: (workspaceId) =>
      Effect.flatMap(read, (s) => {
        const found = s.workspaces.find((w) => w.id === workspaceId)
        return found ? Effect.succeed(found.keyGeneration) : fail("WorkspaceNotFound", workspaceId)
      }),

    registerMachine: (reg) =>
      update((s) =>
        Effect.gen(function* () {
          if (!s.workspaces.some((w) => w.id === reg.workspaceId)) {
            return yield* fail("WorkspaceNotFound", reg.workspaceId)
          }
          const existing = machineById(s, reg.id)
          if (existing !== undefined && existing.secretHash !== reg.secretHash) {
            return yield* fail("MachineSecretMismatch", reg.id)
          }
          const others = s.machines.filter((m) => m.workspaceId === reg.workspaceId && m.id !== reg.id)
          const byHost = others.find((m) => m.hostname.toLowerCase() === reg.hostname.toLowerCase())
          if (byHost !== undefined) {
            return yield* fail("MachineConflict", reg.id, {
              conflict: { field: "hostname", value: reg.hostname, machineId: byHost.id }
            })
          }
          const byName = others.find((m) => m.name === reg.name)
          if (byName !== undefined) {
            return yield* fail("MachineConflict", reg.id, {
              conflict: { field: "name", value: reg.name, machineId: byName.id }
            })
          }
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
      ),

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

    markOnline: (id, at) => updateMachine(id, (m) => online(m, at)),
    heartbeat: (id, at) => updateMachine(id, (m) => online(m, at)),
    markOffline: (id) => updateMachine(id, (m) => new MachineRecord({ ...m, online: false })),
    markAllOffline: update((s) =>
      Effect.succeed([
        undefined,
        { ...s, machines: s.machines.map((m) => (m.online ? new MachineRecord({ ...m, online: false }) : m)) }
      ] as const)
    ),
    removeMachine: (id) =>
      update((s) =>
        machineById(s, id) === undefined
          ? fail("MachineNotFound", id)
          : Effect.succeed([undefined, { ...s, machines: s.machines.filter((m) => m.id !== id) }] as const)
      ),

    currentSigningKey: Effect.map(read, (s) =>
      Option.fromNullable(
        s.signingKeys
          .filter((k) => k.retiredAt === undefined)
          .sort(signingKeyOrder)
          .at(-1)
      )
    ),
    addSigningKey: (key) =>
      update((s) =>
        Effect.gen(function* () {
          if (s.signingKeys.some((k) => k.kid === key.kid)) return yield* fail("SigningKeyExists", key.kid)
          const created = new SigningKey({
            kid: key.kid,
            algorithm: key.algorithm,
            material: key.material,
            createdAt: yield* Clock.currentTimeMillis
          })
          return [created, { ...s, signingKeys: [...s.signingKeys, created] }] as const
        })
      ),
    retireSigningKey: (kid) =>
      update((s) =>
        Effect.gen(function* () {
          const found = s.signingKeys.find((k) => k.kid === kid)
          if (found === undefined) return yield* fail("SigningKeyNotFound", kid)
          if (found.retiredAt !== undefined) return [undefined, s] as const
          const retired = new SigningKey({ ...found, retiredAt: yield* Clock.currentTimeMillis })
          return [undefined, { ...s, signingKeys: s.signingKeys.map((k) => (k.kid === kid ? retired : k)) }] as const
        })
      ),
    listSigningKeys: Effect.map(read, (s) => [...s.signingKeys].sort(signingKeyOrder)),

    createShareLink: (link, detail) =>
      update((s) => {
        if (s.links.some((l) => l.record.id === link.id)) return fail("ShareLinkExists", link.id)
        const record = new ShareLinkRecord({ ...link, useCount: 0, events: [] })
        const next: State = {
          ...s,
          links: [...s.links, { record, expiryRecorded: false }],
          events: appendEvent(s, link.id, { kind: "created", detail, at: link.createdAt })
        }
        return Effect.succeed([withEvents(next, next.links.at(-1)!), next] as const)
      }),
    getShareLink: (id) =>
      Effect.map(read, (s) => {
        const row = s.links.find((l) => l.record.id === id)
        return row === undefined ? Option.none() : Option.some(withEvents(s, row))
      }),
    listShareLinks: (workspaceId, machineId) =>
      Effect.map(read, (s) =>
        s.links
          .filter(
            (l) => l.record.workspaceId === workspaceId && (machineId === undefined || l.record.machineId === machineId)
          )
          .map((l) => withEvents(s, l))
          .sort(shareLinkOrder)
      ),
    revokeShareLink: (id, at, detail) =>
      updateLink(id, (row, s) =>
        row.record.revokedAt !== undefined
          ? s
          : {
              ...s,
              links: replaceLink(s, { ...row, record: new ShareLinkRecord({ ...row.record, revokedAt: at }) }),
              events: appendEvent(s, id, { kind: "revoked", detail, at })
            }
      ).pipe(
        Effect.map(([, s]) =>
          withEvents(
            s,
            s.links.find((l) => l.record.id === id)!
          )
        )
      ),
    recordShareUse: (id, at, detail) =>
      Effect.asVoid(
        updateLink(id, (row, s) => ({
          ...s,
          links: replaceLink(s, {
            ...row,
            record: new ShareLinkRecord({ ...row.record, useCount: row.record.useCount + 1, lastUsedAt: at })
          }),
          events: appendEvent(s, id, { kind: "used", detail, at })
        }))
      ),
    addShareEvent: (id, event) =>
      Effect.asVoid(updateLink(id, (_, s) => ({ ...s, events: appendEvent(s, id, event) }))),
    markShareExpired: (id, event) =>
      Effect.map(
        updateLink(id, (row, s) =>
          row.expiryRecorded
            ? s
            : {
                ...s,
                links: replaceLink(s, { ...row, expiryRecorded: true }),
                events: appendEvent(s, id, { ...event, kind: "expired" })
              }
        ),
        ([row]) => !row.expiryRecorded
      )
  })
})
