/**
 * The in-memory store's state: one immutable value (workspaces, key rows, machines, signing keys, share links and
 * their events), and `MemoryDb`, which reads it and updates it under a lock, writing a new state only when the
 * whole operation succeeds, so a failed call changes nothing.
 */
import * as ApiKey from "@cmdop/domain/ApiKey"
import type { MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import { ShareEvent } from "@cmdop/domain/ShareLink"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import {
  MachineRecord,
  type NewShareEvent,
  shareEventOrder,
  ShareLinkRecord,
  type SigningKey,
  type WorkspaceRecord
} from "./records.js"
import { type MachineConflict, RelayStoreError } from "./RelayStoreError.js"
import { hashKey, newId } from "./secrets.js"

export interface KeyRow {
  readonly id: string
  readonly workspaceId: WorkspaceId
  readonly name: string
  readonly hash: string
  readonly prefix: string
  readonly generation: number
  readonly createdAt: number
  readonly retiredAt: number | undefined
}

/** A fresh API key for a workspace and the row that stores it (hash and prefix only). */
export const mintKey = (workspaceId: WorkspaceId, generation: number, now: number, name: string) => {
  const apiKey = ApiKey.generate()
  const row: KeyRow = {
    id: newId("key"),
    workspaceId,
    name,
    hash: hashKey(apiKey),
    prefix: ApiKey.prefixOf(apiKey),
    generation,
    createdAt: now,
    retiredAt: undefined
  }
  return { apiKey, row }
}

/** A share link without its events; `expiryRecorded`: its `expired` event exists. */
export interface LinkRow {
  readonly record: ShareLinkRecord
  readonly expiryRecorded: boolean
}

export interface EventRow {
  readonly linkId: string
  readonly seq: number
  readonly event: ShareEvent
}

export interface State {
  readonly workspaces: ReadonlyArray<WorkspaceRecord>
  readonly keys: ReadonlyArray<KeyRow>
  readonly machines: ReadonlyArray<MachineRecord>
  readonly signingKeys: ReadonlyArray<SigningKey>
  readonly links: ReadonlyArray<LinkRow>
  readonly events: ReadonlyArray<EventRow>
}

export const empty: State = { workspaces: [], keys: [], machines: [], signingKeys: [], links: [], events: [] }

/** The link with its events, in time order. */
export const withEvents = (s: State, row: LinkRow): ShareLinkRecord =>
  new ShareLinkRecord({
    ...row.record,
    events: s.events
      .filter((e) => e.linkId === row.record.id)
      .sort(shareEventOrder)
      .map((e) => e.event)
  })

export const appendEvent = (s: State, linkId: string, event: NewShareEvent): ReadonlyArray<EventRow> => [
  ...s.events,
  { linkId, seq: s.events.length, event: new ShareEvent(event) }
]

export const fail = (
  reason: RelayStoreError["reason"],
  subject: string,
  extra: { readonly conflict?: MachineConflict } = {}
) => Effect.fail(new RelayStoreError({ reason, subject, ...extra }))

export interface MemoryDb {
  readonly read: Effect.Effect<State>
  /** Runs `f` on the current state under the lock; its new state is stored only when it succeeds. */
  readonly update: <A>(
    f: (s: State) => Effect.Effect<readonly [A, State], RelayStoreError>
  ) => Effect.Effect<A, RelayStoreError>
}

export const makeDb: Effect.Effect<MemoryDb> = Effect.gen(function* () {
  const state = yield* Ref.make(empty)
  const lock = yield* Effect.makeSemaphore(1)
  const read = Ref.get(state)
  return {
    read,
    update: (f) =>
      lock.withPermits(1)(
        Effect.flatMap(read, f).pipe(Effect.flatMap(([a, next]) => Effect.as(Ref.set(state, next), a)))
      )
  }
})

export const machineById = (s: State, id: MachineId) => s.machines.find((m) => m.id === id)

/** Replaces the machine `id` by `f` of it; fails with `MachineNotFound`. */
export const updateMachine = (db: MemoryDb, id: MachineId, f: (m: MachineRecord) => MachineRecord) =>
  db.update((s) =>
    machineById(s, id) === undefined
      ? fail("MachineNotFound", id)
      : Effect.succeed([undefined, { ...s, machines: s.machines.map((m) => (m.id === id ? f(m) : m)) }] as const)
  )

export const online = (m: MachineRecord, at: number) => new MachineRecord({ ...m, online: true, lastHeartbeatAt: at })

/** `m` with what its agent said of its gate (`undefined`: nothing). */
export const withGate = (m: MachineRecord, configured: boolean | undefined) => {
  const { gateConfigured: _said, ...rest } = m
  return new MachineRecord(configured === undefined ? rest : { ...rest, gateConfigured: configured })
}
