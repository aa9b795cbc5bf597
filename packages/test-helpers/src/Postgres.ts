/**
 * PostgreSQL for tests: the server the suites require (`postgres://postgres@127.0.0.1:5432/test`; they fail
 * loudly when it is unreachable) and a fresh schema per use, dropped when its scope closes. Not re-exported from
 * the package index, so tests that never touch PostgreSQL never load its driver.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"

export const PG_URL = "postgres://postgres@127.0.0.1:5432/test"

/** Runs `f` with a PostgreSQL client on `url` (a database of the server; fails loudly when it is unreachable). */
export const withPg = <A, E>(url: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.flatMap(SqlClient.SqlClient, f).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(url), connectTimeout: "5 seconds" })),
    Effect.mapError(
      (error) =>
        new Error(
          `PostgreSQL at ${PG_URL} is required by these tests and failed: ${String(error)}; start it (CI provides it)`
        )
    )
  )

/** Runs `f` with a PostgreSQL client on the server's `test` database. */
export const withPgAdmin = <A, E>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) => withPg(PG_URL, f)

/**
 * A fresh schema named `<prefix>_<random>`, dropped when the scope closes; the URL it yields connects with that
 * schema as its search_path, so parallel runs never see each other's tables.
 */
export const freshPgSchema = (prefix: string) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const schema = `${prefix}_${randomBytes(6).toString("hex")}`
      yield* withPgAdmin((sql) => sql`CREATE SCHEMA ${sql(schema)}`)
      return { schema, url: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}` }
    }),
    ({ schema }) => Effect.orDie(withPgAdmin((sql) => sql`DROP SCHEMA ${sql(schema)} CASCADE`))
  )

/**
 * A fresh database named `<prefix>_<random>` on the server, dropped (with any connection still open) when the
 * scope closes; yields its URL. For suites whose processes each run their own migrations from an empty database.
 */
export const freshPgDatabase = (prefix: string) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const name = `${prefix}_${randomBytes(5).toString("hex")}`
      yield* withPgAdmin((sql) => sql`CREATE DATABASE ${sql(name)}`)
      return { name, url: `postgres://postgres@127.0.0.1:5432/${name}` }
    }),
    ({ name }) => Effect.ignore(withPgAdmin((sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`))
  ).pipe(Effect.map(({ url }) => url))
