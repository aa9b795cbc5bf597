/**
 * A fresh PostgreSQL schema per test run, dropped when the scope closes, on the server the tests require
 * (`postgres://postgres@127.0.0.1:5432/test`); the URL it yields connects with that schema as its search_path, so
 * parallel runs never see each other's tables. Fails loudly when the server is unreachable.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"

export const PG_URL = "postgres://postgres@127.0.0.1:5432/test"

const withPgAdmin = <A, E>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.flatMap(SqlClient.SqlClient, f).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(PG_URL), connectTimeout: "5 seconds" })),
    Effect.mapError(
      (error) =>
        new Error(
          `PostgreSQL at ${PG_URL} is required by these tests and failed: ${String(error)}; start it (CI provides it)`
        )
    )
  )

export const freshPgSchema = Effect.acquireRelease(
  Effect.gen(function* () {
    const schema = `cmdop_cluster_${randomBytes(6).toString("hex")}`
    yield* withPgAdmin((sql) => sql`CREATE SCHEMA ${sql(schema)}`)
    return { schema, url: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}` }
  }),
  ({ schema }) => Effect.orDie(withPgAdmin((sql) => sql`DROP SCHEMA ${sql(schema)} CASCADE`))
)
