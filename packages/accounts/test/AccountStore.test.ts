import * as AccountStore from "@cmdop/accounts/AccountStore"
import { accountStoreContract } from "@cmdop/accounts/store/AccountStoreContract"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { freshPgSchema } from "@cmdop/test-helpers/Postgres"
import * as SqlClient from "@effect/sql/SqlClient"
import { LibsqlClient } from "@effect/sql-libsql"
import { PgClient } from "@effect/sql-pg"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Email } from "@cmdop/accounts/Email"

const tempDirs: Array<string> = []
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "cmdop-accounts-store-"))
  tempDirs.push(dir)
  return dir
}
afterAll(() => tempDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })))

const sqlitePath = join(tempDir(), "nested", "data", "relay.db")

accountStoreContract("memory", AccountStore.layerMemory)
accountStoreContract("sqlite", AccountStore.layerSqlite({ path: sqlitePath }))

const expectedTables = [
  "users",
  "memberships",
  "sign_in_links",
  "web_sessions",
  "device_codes",
  "oauth_grants",
  "oauth_tokens",
  "account_audit",
  "sso_domains",
  "sso_identities"
]

/** The tables the migrations create, as the catalog of each dialect lists them. */
const tableNames = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.onDialectOrElse({
    pg: () =>
      sql<{ readonly name: string }>`SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = current_schema()`,
    orElse: () => sql<{ readonly name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`
  })
  return rows.map((r) => r.name)
})

/** Migrating twice applies the schema once; building the store again on the same database sees the data. */
const migrationsAreIdempotent = Effect.gen(function* () {
  assert.deepStrictEqual(yield* AccountStore.migrate, [
    [1, "accounts"],
    [2, "sso"]
  ])
  assert.deepStrictEqual(yield* AccountStore.migrate, [])
  assert.includeMembers(yield* tableNames, [...expectedTables, AccountStore.migrationsTable])
  const email = Email.make(`again-${randomBytes(4).toString("hex")}@example.com`)
  const written = yield* Effect.provide(
    Effect.flatMap(AccountStore.AccountStore, (s) => s.createUser(email)),
    AccountStore.layerSql
  )
  const store = yield* Effect.provide(AccountStore.AccountStore, AccountStore.layerSql)
  assert.deepStrictEqual(Option.getOrThrow(yield* store.findUserByEmail(email)), written)
})

describe("AccountStore on SQLite", () => {
  it.effect("keeps its data in a private file that a new layer reopens", () =>
    Effect.gen(function* () {
      const path = join(tempDir(), "relay", "relay.db")
      const email = Email.make("reopen@example.com")
      yield* Effect.provide(
        Effect.flatMap(AccountStore.AccountStore, (s) => s.createUser(email)),
        AccountStore.layerSqlite({ path })
      )
      assert.strictEqual(statSync(path).mode & 0o777, 0o600)
      assert.strictEqual(statSync(dirname(path)).mode & 0o777, 0o700)
      const found = yield* Effect.provide(
        Effect.flatMap(AccountStore.AccountStore, (s) => s.findUserByEmail(email)),
        AccountStore.layerSqlite({ path })
      )
      assert.isTrue(Option.isSome(found))
      assert.isTrue(existsSync(sqlitePath), "the contract's database exists")
    })
  )

  it.effect("migrations are idempotent", () =>
    migrationsAreIdempotent.pipe(Effect.provide(LibsqlClient.layer({ url: "file:" + join(tempDir(), "migrate.db") })))
  )
})

// Last in the file: when PostgreSQL is down, this block fails loudly.
accountStoreContract(
  "postgres",
  Layer.unwrapScoped(Effect.map(freshPgSchema("cmdop_accounts_test"), ({ url }) => AccountStore.layerPostgres({ url })))
)

describe("AccountStore on PostgreSQL", () => {
  it.scoped("migrations are idempotent", () =>
    Effect.gen(function* () {
      const { url } = yield* freshPgSchema("cmdop_accounts_test")
      yield* migrationsAreIdempotent.pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url) })))
    })
  )

  it.effect("an unreachable server is a store error without the password", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.provide(
          AccountStore.AccountStore,
          AccountStore.layerPostgres({ url: "postgres://u:hunter2@127.0.0.1:1/x" })
        )
      )
      assert.strictEqual(error.reason, "Sql")
      assert.notInclude(error.message, "hunter2")
      assert.include(error.message, "PostgreSQL")
    })
  )
})
