/**
 * Workspace API keys in the SQL store: a key exists only as a hash, a short prefix and the name its owner gave it;
 * only live keys (not retired, of the workspace's current generation) authenticate. Rotation retires every key
 * and raises the generation; revocation retires one.
 */
import * as ApiKey from "@cmdop/domain/ApiKey"
import * as SqlSchema from "@effect/sql/SqlSchema"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { ApiKeyRecord, apiKeyOrder, DEFAULT_KEY_NAME, type KeyName } from "./records.js"
import { hashKey, newId } from "./secrets.js"
import type { RelayStore } from "./service.js"
import { ApiKeyRow, KeyGenerationRow, KeyIdentityRow } from "./sqlRows.js"
import { fail, type SqlDb } from "./sqlSupport.js"

type Store = RelayStore["Type"]

/** The statements whose rows are decoded. */
const queries = (sql: SqlDb["sql"]) => ({
  keyIdentity: SqlSchema.findOne({
    Request: Schema.String,
    Result: KeyIdentityRow,
    execute: (hash) => sql`SELECT k.id AS key_id, k.generation AS generation, w.id AS workspace_id,
      w.name AS workspace_name FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
      WHERE k.hash = ${hash} AND k.retired_at IS NULL AND k.generation = w.key_generation`
  }),
  workspace: SqlSchema.findOne({
    Request: Schema.String,
    Result: KeyGenerationRow,
    execute: (name) => sql`SELECT id, key_generation FROM workspaces WHERE name = ${name}`
  }),
  // Bumping the generation first locks the workspace row, so concurrent rotations serialise.
  bumpGeneration: SqlSchema.findOne({
    Request: Schema.String,
    Result: KeyGenerationRow,
    execute: (name) => sql`UPDATE workspaces SET key_generation = key_generation + 1 WHERE name = ${name}
      RETURNING id, key_generation`
  }),
  live: SqlSchema.findAll({
    Request: Schema.String,
    Result: ApiKeyRow,
    execute: (workspaceId) => sql`SELECT k.id AS id, k.workspace_id AS workspace_id, k.name AS name, k.prefix AS prefix,
      k.generation AS generation, k.created_at AS created_at FROM api_keys k
      JOIN workspaces w ON w.id = k.workspace_id
      WHERE k.workspace_id = ${workspaceId} AND k.retired_at IS NULL AND k.generation = w.key_generation`
  })
})

/** Mints a key of `generation` named `name`; the raw key is returned, only its hash stored. */
export const insertKey = (db: SqlDb, workspaceId: string, generation: number, now: number, name: string) => {
  const apiKey = ApiKey.generate()
  const id = newId("key")
  return Effect.as(
    db.sql`INSERT INTO api_keys (id, workspace_id, name, hash, prefix, generation, created_at, retired_at)
      VALUES (${id}, ${workspaceId}, ${name}, ${hashKey(apiKey)}, ${ApiKey.prefixOf(apiKey)}, ${generation},
      ${now}, ${null})`,
    {
      apiKey,
      key: new ApiKeyRecord({
        id,
        workspaceId: workspaceId as ApiKeyRecord["workspaceId"],
        name,
        prefix: ApiKey.prefixOf(apiKey),
        generation,
        createdAt: now
      })
    }
  )
}

export const make = (db: SqlDb) => {
  const { sql } = db
  const { bumpGeneration, keyIdentity, live, workspace } = queries(sql)

  const workspaceNamed = (name: string) =>
    Effect.flatMap(workspace(name), (row) =>
      Option.match(row, { onNone: () => fail("WorkspaceNotFound", name), onSome: Effect.succeed })
    )

  const rotateKey = (workspaceName: string, name: KeyName = DEFAULT_KEY_NAME) =>
    db.transaction("rotateKey")(
      Effect.gen(function* () {
        const row = yield* bumpGeneration(workspaceName)
        if (Option.isNone(row)) return yield* fail("WorkspaceNotFound", workspaceName)
        const now = yield* Clock.currentTimeMillis
        yield* sql`UPDATE api_keys SET retired_at = ${now} WHERE workspace_id = ${row.value.id} AND retired_at IS NULL`
        return (yield* insertKey(db, row.value.id, row.value.keyGeneration, now, name)).apiKey
      })
    )

  const createKey = (workspaceName: string, name: KeyName) =>
    db
      .transaction("createKey")(
        Effect.gen(function* () {
          const ws = yield* workspaceNamed(workspaceName)
          if ((yield* live(ws.id)).some((k) => k.name === name)) return yield* fail("KeyNameTaken", name)
          return yield* insertKey(db, ws.id, ws.keyGeneration, yield* Clock.currentTimeMillis, name)
        })
      )
      .pipe(
        // A concurrent create of the same name loses on the partial unique index; report it as what it is.
        Effect.catchIf(
          (e) => e.reason === "Sql",
          (e) =>
            Effect.flatMap(
              db.guard("createKey")(Effect.flatMap(workspaceNamed(workspaceName), (ws) => live(ws.id))),
              (keys) => (keys.some((k) => k.name === name) ? fail("KeyNameTaken", name) : Effect.fail(e))
            )
        )
      )

  const revokeKey = (workspaceName: string, idOrName: string) =>
    db.transaction("revokeKey")(
      Effect.gen(function* () {
        const ws = yield* workspaceNamed(workspaceName)
        const key = (yield* live(ws.id)).find((k) => k.id === idOrName || k.name === idOrName)
        if (key === undefined) return yield* fail("KeyNotFound", idOrName)
        const now = yield* Clock.currentTimeMillis
        yield* sql`UPDATE api_keys SET retired_at = ${now} WHERE id = ${key.id} AND retired_at IS NULL`
        return key
      })
    )

  return {
    rotateKey,
    createKey,
    revokeKey,
    listKeys: (workspaceName: string) =>
      db.guard("listKeys")(
        Effect.flatMap(workspaceNamed(workspaceName), (ws) =>
          Effect.map(live(ws.id), (rows) => [...rows].sort(apiKeyOrder))
        )
      ),
    authenticateKey: (rawKey: Redacted.Redacted<string>) => db.guard("authenticateKey")(keyIdentity(hashKey(rawKey)))
  } satisfies Partial<Store>
}
