/**
 * The account store's schema, applied by `@effect/sql`'s Migrator when a SQL layer is built. It has its own
 * migrations table (`cmdop_accounts_migrations`), so it can share a database with the relay store, whose tables
 * it never touches (no table name is shared with `cmdop_relay_migrations`' schema). The same statements run on
 * SQLite and PostgreSQL: text ids, `BIGINT` milliseconds since the epoch, `INTEGER` 0/1 flags; only the
 * auto-increment key of `account_audit` differs. Migrations only ever get appended; never edit a shipped one.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"

/** The table the Migrator records applied account migrations in. */
export const migrationsTable = "cmdop_accounts_migrations"

const init = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    active_workspace_id TEXT,
    password_hash TEXT
  )`
  yield* sql`CREATE TABLE memberships (
    user_id TEXT NOT NULL REFERENCES users (id),
    workspace_id TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, workspace_id)
  )`
  yield* sql`CREATE INDEX memberships_workspace ON memberships (workspace_id)`
  yield* sql`CREATE TABLE sign_in_links (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
  )`
  yield* sql`CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
  )`
  yield* sql`CREATE INDEX web_sessions_user ON web_sessions (user_id)`
  yield* sql`CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY NOT NULL,
    user_code_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    interval_seconds INTEGER NOT NULL,
    last_polled_at BIGINT,
    status TEXT NOT NULL,
    user_id TEXT,
    workspace_id TEXT,
    grant_id TEXT
  )`
  yield* sql`CREATE TABLE oauth_grants (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    workspace_id TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
  )`
  yield* sql`CREATE INDEX oauth_grants_user ON oauth_grants (user_id)`
  yield* sql`CREATE TABLE oauth_tokens (
    hash TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    grant_id TEXT NOT NULL REFERENCES oauth_grants (id),
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
  )`
  yield* sql`CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id)`
  yield* sql.onDialectOrElse({
    pg: () => sql`CREATE TABLE account_audit (
      seq BIGSERIAL PRIMARY KEY,
      actor TEXT NOT NULL,
      action TEXT NOT NULL,
      subject TEXT NOT NULL,
      workspace_id TEXT,
      detail TEXT NOT NULL DEFAULT '',
      at BIGINT NOT NULL
    )`,
    orElse: () => sql`CREATE TABLE account_audit (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      actor TEXT NOT NULL,
      action TEXT NOT NULL,
      subject TEXT NOT NULL,
      workspace_id TEXT,
      detail TEXT NOT NULL DEFAULT '',
      at BIGINT NOT NULL
    )`
  })
  yield* sql`CREATE INDEX account_audit_workspace ON account_audit (workspace_id)`
})

/**
 * Single sign-on: which email domains may join a workspace (with which role), and which identity of which
 * OpenID provider (issuer, subject) belongs to which user; a user has at most one subject per issuer.
 */
const sso = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE sso_domains (
    workspace_id TEXT NOT NULL,
    domain TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, domain)
  )`
  yield* sql`CREATE INDEX sso_domains_domain ON sso_domains (domain)`
  yield* sql`CREATE TABLE sso_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
  )`
  yield* sql`CREATE UNIQUE INDEX sso_identities_user ON sso_identities (issuer, user_id)`
})

/** Every migration, by `<id>_<name>`. */
export const migrations = { "0001_accounts": init, "0002_sso": sso }

/**
 * Applies the migrations not yet recorded and returns them (empty when the schema is current). Safe to run on
 * every start and from several relays at once: PostgreSQL serialises runs with a table lock.
 */
export const migrate: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient
> = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: migrationsTable })
