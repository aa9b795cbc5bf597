/**
 * Workspaces and their API keys in the SQL store: a key exists only as a hash and a short prefix, and only keys
 * of the workspace's current generation authenticate.
 */
import * as ApiKey from "@cmdop/domain/ApiKey"
import { WorkspaceId } from "@cmdop/domain/Machine"
import type { WorkspaceName } from "@cmdop/domain/Workspace"
import * as SqlSchema from "@effect/sql/SqlSchema"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { compare, WorkspaceRecord } from "./records.js"
import { hashKey, newId } from "./secrets.js"
import type { RelayStore } from "./service.js"
import { IntColumn, KeyGenerationRow, KeyIdentityRow, WorkspaceRow } from "./sqlRows.js"
import { fail, type SqlDb } from "./sqlSupport.js"

type Store = RelayStore["Type"]

/** The statements whose rows are decoded. */
const queries = (sql: SqlDb["sql"]) => {
  const byName = SqlSchema.findOne({
    Request: Schema.String,
    Result: WorkspaceRow,
    execute: (name) => sql`SELECT id, name, created_at, key_generation FROM workspaces WHERE name = ${name}`
  })
  const byId = SqlSchema.findOne({
    Request: Schema.String,
    Result: WorkspaceRow,
    execute: (id) => sql`SELECT id, name, created_at, key_generation FROM workspaces WHERE id = ${id}`
  })
  const all = SqlSchema.findAll({
    Request: Schema.Void,
    Result: WorkspaceRow,
    execute: () => sql`SELECT id, name, created_at, key_generation FROM workspaces`
  })
  const keyIdentity = SqlSchema.findOne({
    Request: Schema.String,
    Result: KeyIdentityRow,
    execute: (hash) => sql`SELECT k.id AS key_id, k.generation AS generation, w.id AS workspace_id,
      w.name AS workspace_name FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
      WHERE k.hash = ${hash} AND k.retired_at IS NULL AND k.generation = w.key_generation`
  })
  const generation = SqlSchema.findOne({
    Request: Schema.String,
    Result: Schema.Struct({ key_generation: IntColumn }),
    execute: (id) => sql`SELECT key_generation FROM workspaces WHERE id = ${id}`
  })
  const bumpGeneration = SqlSchema.findOne({
    Request: Schema.String,
    Result: KeyGenerationRow,
    // Bumping the generation first locks the workspace row, so concurrent rotations serialise.
    execute: (name) => sql`UPDATE workspaces SET key_generation = key_generation + 1 WHERE name = ${name}
      RETURNING id, key_generation`
  })
  return { byName, byId, all, keyIdentity, generation, bumpGeneration }
}

export const make = (db: SqlDb) => {
  const { sql } = db
  const { all, bumpGeneration, byId, byName, generation, keyIdentity } = queries(sql)

  /** Mints a key of `generation` for the workspace; the raw key is returned, only its hash stored. */
  const insertKey = (workspaceId: string, keyGeneration: number, now: number) => {
    const apiKey = ApiKey.generate()
    return Effect.as(
      sql`INSERT INTO api_keys (id, workspace_id, hash, prefix, generation, created_at, retired_at)
        VALUES (${newId("key")}, ${workspaceId}, ${hashKey(apiKey)}, ${ApiKey.prefixOf(apiKey)}, ${keyGeneration},
        ${now}, ${null})`,
      apiKey
    )
  }

  const createWorkspace = (name: WorkspaceName) =>
    db
      .transaction("createWorkspace")(
        Effect.gen(function* () {
          if (Option.isSome(yield* byName(name))) return yield* fail("WorkspaceExists", name)
          const now = yield* Clock.currentTimeMillis
          const workspace = new WorkspaceRecord({
            id: WorkspaceId.make(newId("ws")),
            name,
            createdAt: now,
            keyGeneration: 1
          })
          yield* sql`INSERT INTO workspaces (id, name, created_at, key_generation)
            VALUES (${workspace.id}, ${name}, ${now}, ${1})`
          const apiKey = yield* insertKey(workspace.id, 1, now)
          return { workspace, apiKey }
        })
      )
      .pipe(
        // A concurrent create of the same name loses on the unique index; report it as what it is.
        Effect.catchIf(
          (e) => e.reason === "Sql",
          (e) =>
            Effect.flatMap(db.guard("createWorkspace")(byName(name)), (found) =>
              Option.isSome(found) ? fail("WorkspaceExists", name) : Effect.fail(e)
            )
        )
      )

  const rotateKey = (workspaceName: string) =>
    db.transaction("rotateKey")(
      Effect.gen(function* () {
        const row = yield* bumpGeneration(workspaceName)
        if (Option.isNone(row)) return yield* fail("WorkspaceNotFound", workspaceName)
        const now = yield* Clock.currentTimeMillis
        yield* sql`UPDATE api_keys SET retired_at = ${now} WHERE workspace_id = ${row.value.id} AND retired_at IS NULL`
        return yield* insertKey(row.value.id, row.value.keyGeneration, now)
      })
    )

  const found =
    (subject: string) =>
    <A>(option: Option.Option<A>) =>
      Option.match(option, { onNone: () => fail("WorkspaceNotFound", subject), onSome: Effect.succeed })

  return {
    createWorkspace,
    getWorkspace: (name) => db.guard("getWorkspace")(Effect.flatMap(byName(name), found(name))),
    getWorkspaceById: (id) => db.guard("getWorkspaceById")(Effect.flatMap(byId(id), found(id))),
    listWorkspaces: db.guard("listWorkspaces")(
      Effect.map(all(undefined), (rows) => [...rows].sort((a, b) => compare(a.name, b.name)))
    ),
    rotateKey,
    authenticateKey: (rawKey: Redacted.Redacted<string>) => db.guard("authenticateKey")(keyIdentity(hashKey(rawKey))),
    currentKeyGeneration: (workspaceId) =>
      db.guard("currentKeyGeneration")(
        Effect.flatMap(generation(workspaceId), found(workspaceId)).pipe(Effect.map((row) => row.key_generation))
      )
  } satisfies Partial<Store>
}
