/**
 * What every SQL operation of the account store uses: failure mapping, transactions, row locking, and the insert
 * of a token pair.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type { AccountStoreError } from "./AccountStoreError.js"
import type { NewTokenPair } from "./records.js"
import { sqlFailure } from "./sqlRows.js"

/** The helpers every SQL operation uses: failure mapping, transactions, row locking. */
export const helpers = (sql: SqlClient.SqlClient) => {
  const guard =
    (operation: string) =>
    <A>(effect: Effect.Effect<A, AccountStoreError | SqlError>): Effect.Effect<A, AccountStoreError> =>
      Effect.mapError(effect, (e) => (e instanceof SqlError ? sqlFailure(operation, e) : e))
  const transaction =
    (operation: string) =>
    <A>(effect: Effect.Effect<A, AccountStoreError | SqlError>): Effect.Effect<A, AccountStoreError> =>
      guard(operation)(sql.withTransaction(effect))
  /** `FOR UPDATE` on PostgreSQL; nothing on SQLite, where a write transaction is exclusive anyway. */
  const forUpdate = sql.onDialectOrElse({ pg: () => sql.literal("FOR UPDATE"), orElse: () => sql.literal("") })
  const insertTokens = (grantId: string, t: NewTokenPair) =>
    sql`INSERT INTO oauth_tokens (hash, kind, grant_id, expires_at, consumed_at) VALUES
      (${t.accessHash}, ${"access"}, ${grantId}, ${t.accessExpiresAt}, ${null}),
      (${t.refreshHash}, ${"refresh"}, ${grantId}, ${t.refreshExpiresAt}, ${null})`
  return { guard, transaction, forUpdate, insertTokens }
}
