/**
 * The account store: users, memberships in the relay's workspaces, password hashes, sign-in links, web sessions,
 * device authorizations, OAuth grants and tokens (hashes only), and the audit trail. One service, three
 * implementations that pass one contract suite (`store/AccountStoreContract.ts`): in memory, SQLite (the relay's
 * data directory) and PostgreSQL. The SQL layers migrate their own tables (`cmdop_accounts_migrations`) when built,
 * so they can share the relay store's database.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as SqlClient from "@effect/sql/SqlClient"
import { LibsqlClient } from "@effect/sql-libsql"
import { PgClient } from "@effect/sql-pg"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { AccountStoreError } from "./store/AccountStoreError.js"
import * as memory from "./store/memory.js"
import { AccountStore } from "./store/service.js"
import * as sql from "./store/sql.js"
import { sqlFailure } from "./store/sqlRows.js"

export { AccountStore, type PollResult, type RefreshResult } from "./store/service.js"
export { AccountStoreError } from "./store/AccountStoreError.js"
export * from "./store/records.js"
export { migrate, migrations, migrationsTable } from "./store/migrations.js"

/** An in-memory store, empty at start. For tests and embedding. */
export const layerMemory: Layer.Layer<AccountStore> = Layer.effect(AccountStore, memory.make)

/** The SQL store on whatever `SqlClient` is provided (SQLite or PostgreSQL); migrates its tables when built. */
export const layerSql: Layer.Layer<AccountStore, AccountStoreError, SqlClient.SqlClient> = Layer.effect(
  AccountStore,
  sql.make
)

/**
 * The store in a SQLite file at `path` (its directory is created 0700 when missing; the file is made 0600), in
 * WAL mode. The relay passes its own `<data-dir>/relay.db` so accounts live next to workspaces.
 */
export const layerSqlite = (options: { readonly path: string }): Layer.Layer<AccountStore, AccountStoreError> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const file = path.resolve(options.path)
      yield* fs
        .makeDirectory(path.dirname(file), { recursive: true, mode: 0o700 })
        .pipe(
          Effect.mapError(
            (error) => new AccountStoreError({ reason: "Sql", subject: "opening the database", detail: error.message })
          )
        )
      const wal = Layer.effectDiscard(
        Effect.gen(function* () {
          const client = yield* SqlClient.SqlClient
          // The relay's own store writes to the same file over another connection: wait for it, never fail busy.
          yield* client`PRAGMA busy_timeout = 5000`.pipe(Effect.ignore)
          yield* client`PRAGMA journal_mode = WAL`.pipe(
            Effect.catchAll((error) => Effect.logWarning(`SQLite WAL mode unavailable for ${file}: ${error.message}`))
          )
          yield* Effect.forEach([file, `${file}-wal`, `${file}-shm`], (f) => fs.chmod(f, 0o600).pipe(Effect.ignore), {
            discard: true
          })
        })
      )
      return layerSql.pipe(Layer.provide(wal), Layer.provide(LibsqlClient.layer({ url: "file:" + file })))
    })
  ).pipe(Layer.provide(Layer.merge(NodeFileSystem.layer, NodePath.layer)))

/**
 * The store on PostgreSQL at `url` (a `search_path` may be set with `?options=-c%20search_path%3Dschema`). Fails
 * when the server cannot be reached within 5 seconds; the error never holds the URL's password.
 */
export const layerPostgres = (options: {
  readonly url: string | Redacted.Redacted<string>
}): Layer.Layer<AccountStore, AccountStoreError> =>
  layerSql.pipe(
    Layer.provide(
      PgClient.layer({
        url: Redacted.isRedacted(options.url) ? options.url : Redacted.make(options.url),
        connectTimeout: Duration.seconds(5)
      }).pipe(Layer.mapError((error) => sqlFailure("connecting to PostgreSQL", error)))
    )
  )
