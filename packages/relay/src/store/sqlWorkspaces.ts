/**
 * Workspaces in the SQL store, each created with its first API key (`sqlKeys.ts` holds the keys).
 */
import { WorkspaceId } from "@cmdop/domain/Machine"
import type { WorkspaceName } from "@cmdop/domain/Workspace"
import * as SqlSchema from "@effect/sql/SqlSchema"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { compare, DEFAULT_KEY_NAME, WorkspaceRecord } from "./records.js"
import { newId } from "./secrets.js"
import { insertKey } from "./sqlKeys.js"
import type { RelayStore } from "./service.js"
import { IntColumn, WorkspaceRow } from "./sqlRows.js"
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
  const generation = SqlSchema.findOne({
    Request: Schema.String,
    Result: Schema.Struct({ key_generation: IntColumn }),
    execute: (id) => sql`SELECT key_generation FROM workspaces WHERE id = ${id}`
  })
  return { byName, byId, all, generation }
}

export const make = (db: SqlDb) => {
  const { sql } = db
  const { all, byId, byName, generation } = queries(sql)

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
          const { apiKey } = yield* insertKey(db, workspace.id, 1, now, DEFAULT_KEY_NAME)
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
    currentKeyGeneration: (workspaceId) =>
      db.guard("currentKeyGeneration")(
        Effect.flatMap(generation(workspaceId), found(workspaceId)).pipe(Effect.map((row) => row.key_generation))
      )
  } satisfies Partial<Store>
}
