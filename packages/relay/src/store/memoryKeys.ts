/**
 * Workspace API keys in the in-memory store: creation, rotation, listing, revocation and authentication, over the
 * one state of `memoryState.ts` (a failed call changes nothing). Only hashes and prefixes are kept.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import { fail, type KeyRow, type MemoryDb, mintKey, type State } from "./memoryState.js"
import { ApiKeyRecord, apiKeyOrder, DEFAULT_KEY_NAME, KeyIdentity, type KeyName, WorkspaceRecord } from "./records.js"
import { hashKey } from "./secrets.js"
import type { RelayStore } from "./service.js"

type Store = RelayStore["Type"]

const toRecord = (row: KeyRow) =>
  new ApiKeyRecord({
    id: row.id,
    workspaceId: row.workspaceId,
    name: row.name,
    prefix: row.prefix,
    generation: row.generation,
    createdAt: row.createdAt
  })

const workspaceNamed = (s: State, name: string) => {
  const found = s.workspaces.find((w) => w.name === name)
  return found === undefined ? fail("WorkspaceNotFound", name) : Effect.succeed(found)
}

/** Live: not retired and of the workspace's current generation. */
const liveKeys = (s: State, workspace: WorkspaceRecord) =>
  s.keys.filter(
    (k) => k.workspaceId === workspace.id && k.retiredAt === undefined && k.generation === workspace.keyGeneration
  )

export const keys = (db: MemoryDb) =>
  ({
    authenticateKey: (rawKey: Redacted.Redacted<string>) =>
      Effect.map(db.read, (s) => {
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

    rotateKey: (workspaceName: string, name: KeyName = DEFAULT_KEY_NAME) =>
      db.update((s) =>
        Effect.gen(function* () {
          const found = yield* workspaceNamed(s, workspaceName)
          const now = yield* Clock.currentTimeMillis
          const workspace = new WorkspaceRecord({ ...found, keyGeneration: found.keyGeneration + 1 })
          const { apiKey, row: key } = mintKey(workspace.id, workspace.keyGeneration, now, name)
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

    createKey: (workspaceName: string, name: KeyName) =>
      db.update((s) =>
        Effect.gen(function* () {
          const workspace = yield* workspaceNamed(s, workspaceName)
          if (liveKeys(s, workspace).some((k) => k.name === name)) return yield* fail("KeyNameTaken", name)
          const now = yield* Clock.currentTimeMillis
          const { apiKey, row } = mintKey(workspace.id, workspace.keyGeneration, now, name)
          return [
            { key: toRecord(row), apiKey },
            { ...s, keys: [...s.keys, row] }
          ] as const
        })
      ),

    listKeys: (workspaceName: string) =>
      Effect.flatMap(db.read, (s) =>
        Effect.map(workspaceNamed(s, workspaceName), (workspace) =>
          liveKeys(s, workspace).map(toRecord).sort(apiKeyOrder)
        )
      ),

    revokeKey: (workspaceName: string, idOrName: string) =>
      db.update((s) =>
        Effect.gen(function* () {
          const workspace = yield* workspaceNamed(s, workspaceName)
          const key = liveKeys(s, workspace).find((k) => k.id === idOrName || k.name === idOrName)
          if (key === undefined) return yield* fail("KeyNotFound", idOrName)
          const now = yield* Clock.currentTimeMillis
          const keys = s.keys.map((k) => (k.id === key.id ? { ...k, retiredAt: now } : k))
          return [toRecord(key), { ...s, keys }] as const
        })
      )
  }) satisfies Partial<Store>
