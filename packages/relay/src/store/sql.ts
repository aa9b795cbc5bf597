/**
 * The SQL `RelayStore` over any `@effect/sql` client. The statements are portable (SQLite and PostgreSQL run the
 * same text); multi-step operations run in one transaction, so a failure changes nothing. Rows are decoded with
 * schemas (`sqlRows.ts`). Listings are sorted in JavaScript so every database (and the memory layer) yields the
 * same order. Each part lives in its own module: `sqlWorkspaces.ts` (workspaces), `sqlKeys.ts` (API keys), `sqlMachines.ts`,
 * `sqlShareLinks.ts` (share links and signing keys).
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { migrate } from "./migrations.js"
import type { RelayStoreError } from "./RelayStoreError.js"
import { RelayStore } from "./service.js"
import * as SqlKeys from "./sqlKeys.js"
import * as SqlMachines from "./sqlMachines.js"
import * as SqlShareLinks from "./sqlShareLinks.js"
import { makeDb, sqlFailure } from "./sqlSupport.js"
import * as SqlWorkspaces from "./sqlWorkspaces.js"

export { sqlFailure } from "./sqlSupport.js"

/**
 * Runs the migrations, mapping their failures to `RelayStoreError` (the Migrator turns a failed statement into a
 * defect; it is a store failure to the caller).
 */
export const migrateOrFail: Effect.Effect<void, RelayStoreError, SqlClient.SqlClient> = migrate.pipe(
  Effect.catchAll((error) => Effect.fail(sqlFailure("migrations", error))),
  Effect.catchSomeDefect((defect) =>
    defect instanceof Migrator.MigrationError
      ? Option.some(Effect.fail(sqlFailure("migrations", { message: defect.message, cause: defect.cause })))
      : Option.none()
  ),
  Effect.asVoid
)

/** Builds the SQL store on the ambient client, migrating the schema first. */
export const make: Effect.Effect<RelayStore["Type"], RelayStoreError, SqlClient.SqlClient> = Effect.gen(function* () {
  const db = makeDb(yield* SqlClient.SqlClient)
  yield* migrateOrFail
  return RelayStore.of({
    ...SqlWorkspaces.make(db),
    ...SqlKeys.make(db),
    ...SqlMachines.make(db),
    ...SqlShareLinks.signingKeys(db),
    ...SqlShareLinks.shareLinks(db)
  })
})
