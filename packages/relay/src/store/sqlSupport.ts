/**
 * What the SQL store's parts share: the client, the mapping of database and row-decoding failures to store errors
 * (the operation, the driver's message and code; never the parameters), transactions, and a span per operation.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { ParseError } from "effect/ParseResult"
import { type MachineConflict, RelayStoreError } from "./RelayStoreError.js"

/** The driver's error code (SQLSTATE, `SQLITE_…`, `ECONNREFUSED`), which names the problem without any values. */
const codeOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

/**
 * What to do about the failures a person running the relay meets first, by driver code: PostgreSQL's SQLSTATEs for
 * a missing database or a refused login, and the socket errors of a server that is not there.
 */
const HINTS: Readonly<Record<string, string>> = {
  "3D000": "the database does not exist: create it with createdb <name> or CREATE DATABASE, or fix the name in --db",
  "28P01": "the server refused the password: check the user and password in --db",
  "28000": "the server refused this user: check the user in --db and the server's pg_hba.conf",
  ECONNREFUSED: "nothing listens there: is PostgreSQL running, on that host and port?",
  ENOTFOUND: "the host name does not resolve: check the host in --db"
}

/**
 * A database failure in one line: the driver's message, its code and, for the failures a person running the relay
 * meets first, what to do (`PgClient: Failed to connect, 3D000 (the database does not exist: …)`); never the
 * parameters. The relay store and the cluster parts (which may open the database first) say it alike.
 */
export const explain = (error: { readonly message: string; readonly cause?: unknown }): string => {
  const code = codeOf(error.cause) ?? codeOf(causeOf(error.cause))
  const hint = code === undefined ? undefined : HINTS[code]
  return code === undefined ? error.message : `${error.message}, ${code}${hint === undefined ? "" : ` (${hint})`}`
}

/** A database failure as a store error: the operation, the driver's message and code; never the parameters. */
export const sqlFailure = (operation: string, error: { readonly message: string; readonly cause?: unknown }) =>
  new RelayStoreError({ reason: "Sql", subject: operation, detail: explain(error) })

/** The error an error wraps (`cause`), if any. */
const causeOf = (error: unknown): unknown =>
  typeof error === "object" && error !== null && "cause" in error ? error.cause : undefined

/** A store failure of `reason` about `subject`. */
export const fail = (reason: RelayStoreError["reason"], subject: string, conflict?: MachineConflict) =>
  Effect.fail(new RelayStoreError({ reason, subject, ...(conflict === undefined ? {} : { conflict }) }))

/** What a statement may fail with before `guard` maps it. */
export type StatementError = RelayStoreError | SqlError | ParseError

export interface SqlDb {
  readonly sql: SqlClient.SqlClient
  /** Maps the failures of `operation` to store errors, in a span named after it. */
  readonly guard: (
    operation: string
  ) => <A>(effect: Effect.Effect<A, StatementError>) => Effect.Effect<A, RelayStoreError>
  /** `guard`, with `effect` in one transaction. */
  readonly transaction: (
    operation: string
  ) => <A>(effect: Effect.Effect<A, StatementError>) => Effect.Effect<A, RelayStoreError>
}

export const makeDb = (sql: SqlClient.SqlClient): SqlDb => {
  const guard =
    (operation: string) =>
    <A>(effect: Effect.Effect<A, StatementError>): Effect.Effect<A, RelayStoreError> =>
      Effect.mapError(effect, (e) =>
        e instanceof SqlError
          ? sqlFailure(operation, e)
          : e instanceof ParseError
            ? sqlFailure(operation, { message: `a stored row does not decode: ${e.message}` })
            : e
      ).pipe(Effect.withSpan(`RelayStore.${operation}`))
  const transaction =
    (operation: string) =>
    <A>(effect: Effect.Effect<A, StatementError>): Effect.Effect<A, RelayStoreError> =>
      guard(operation)(sql.withTransaction(effect))
  return { sql, guard, transaction }
}
