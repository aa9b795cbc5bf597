/**
 * The relay's durable store: workspaces and their API keys (hashes only), machines, and the signing keys of
 * share links. One service, three implementations that pass one contract suite (`store/RelayStoreContract.ts`):
 * in memory, SQLite embedded in the data directory (the default), and PostgreSQL (scale-out). The SQL layers
 * migrate the schema when they are built.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as SqlClient from "@effect/sql/SqlClient"
import { LibsqlClient } from "@effect/sql-libsql"
import * as SqliteConnections from "./store/sqliteConnections.js"
import { PgClient } from "@effect/sql-pg"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as memory from "./store/memory.js"
import { RelayStoreError } from "./store/RelayStoreError.js"
import * as sql from "./store/sql.js"
import { RelayStore } from "./store/service.js"

export { RelayStore } from "./store/service.js"
export { MachineConflict, RelayStoreError } from "./store/RelayStoreError.js"
export {
  type CreatedWorkspace,
  KeyIdentity,
  MachineRecord,
  MachineRegistration,
  type NewSigningKey,
  SigningKey,
  toMachine,
  WorkspaceRecord
} from "./store/records.js"
export { migrate, migrations, migrationsTable } from "./store/migrations.js"

/** An in-memory store, empty at start. For tests and embedding. */
export const layerMemory: Layer.Layer<RelayStore> = Layer.effect(RelayStore, memory.make)

/** The SQL store on whatever `SqlClient` is provided (SQLite or PostgreSQL); migrates the schema when built. */
export const layerSql: Layer.Layer<RelayStore, RelayStoreError, SqlClient.SqlClient> = Layer.effect(
  RelayStore,
  sql.make
)

/**
 * The embedded store: a SQLite file at `path` (its directory is created when missing), in WAL mode so readers
 * never wait for the writer. The relay's default (`<data-dir>/relay.db`).
 */
export const layerSqlite = (options: { readonly path: string }): Layer.Layer<RelayStore, RelayStoreError> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const file = path.resolve(options.path)
      // The database holds key hashes and share-link signing secrets: a private directory, private files.
      yield* fs.makeDirectory(path.dirname(file), { recursive: true, mode: 0o700 }).pipe(
        Effect.zipRight(fs.chmod(path.dirname(file), 0o700)),
        Effect.mapError(
          (error) => new RelayStoreError({ reason: "Sql", subject: "opening the database", detail: error.message })
        )
      )
      const wal = Layer.effectDiscard(
        // The account store writes to the same file over another connection: wait for it, never fail busy.
        Effect.flatMap(SqlClient.SqlClient, (client) =>
          Effect.zipRight(Effect.ignore(client`PRAGMA busy_timeout = 5000`), client`PRAGMA journal_mode = WAL`)
        ).pipe(
          Effect.catchAll((error) => Effect.logWarning(`SQLite WAL mode unavailable for ${file}: ${error.message}`)),
          Effect.zipRight(
            Effect.forEach([file, `${file}-wal`, `${file}-shm`], (f) => fs.chmod(f, 0o600).pipe(Effect.ignore), {
              discard: true
            })
          )
        )
      )
      // Fixed connections (`sqliteConnections.ts`): the client's own transactions leak one connection each.
      const client = Layer.unwrapScoped(
        Effect.map(SqliteConnections.make("file:" + file), (liveClient) => LibsqlClient.layer({ liveClient }))
      )
      return layerSql.pipe(Layer.provide(wal), Layer.provide(client))
    })
  ).pipe(Layer.provide(Layer.merge(NodeFileSystem.layer, NodePath.layer)))

/**
 * The scale-out store on PostgreSQL at `url` (`postgres://user:password@host:5432/db`; a `search_path` may be set
 * with `?options=-c%20search_path%3Dschema`). Fails when the server cannot be reached within 5 seconds; the
 * error never holds the URL's password.
 */
export const layerPostgres = (options: {
  readonly url: string | Redacted.Redacted<string>
}): Layer.Layer<RelayStore, RelayStoreError> =>
  layerSql.pipe(
    Layer.provide(
      PgClient.layer({
        url: Redacted.isRedacted(options.url) ? options.url : Redacted.make(options.url),
        connectTimeout: Duration.seconds(5)
      }).pipe(Layer.mapError((error) => sql.sqlFailure("connecting to PostgreSQL", error)))
    )
  )
