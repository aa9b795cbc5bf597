import * as SqliteConnections from "@cmdop/relay/store/sqliteConnections"
import { assert, describe, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { LibsqlClient } from "@effect/sql-libsql"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** Descriptors this process holds open on `file` (the database and its WAL): one pair per native connection. */
const openOn = (file: string) =>
  readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(file)
    } catch {
      return false
    }
  }).length

const withClient = <A, E>(f: (sql: SqlClient.SqlClient, file: string) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const dir = mkdtempSync(join(tmpdir(), "cmdop-sqlite-connections-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const file = join(dir, "relay.db")
    const layer = Layer.unwrapScoped(
      Effect.map(SqliteConnections.make(`file:${file}`), (liveClient) => LibsqlClient.layer({ liveClient }))
    )
    return yield* Effect.flatMap(SqlClient.SqlClient, (sql) => f(sql, file)).pipe(Effect.provide(layer))
  }).pipe(Effect.scoped)

describe("the embedded store's SQLite connections", () => {
  it.effect("300 transactions open no new connection (libsql's own transaction() left one behind each)", () =>
    withClient((sql, file) =>
      Effect.gen(function* () {
        yield* sql`CREATE TABLE t (n INTEGER)`
        yield* sql.withTransaction(sql`INSERT INTO t VALUES (0)`)
        const before = openOn(file)
        for (let i = 1; i <= 300; i++) yield* sql.withTransaction(sql`INSERT INTO t VALUES (${i})`)
        const after = openOn(file)
        assert.isAbove(before, 0, "the database is open")
        assert.strictEqual(after, before, `descriptors on the database: ${before} before, ${after} after`)
        const rows = yield* sql<{ n: number }>`SELECT count(*) AS n FROM t`
        assert.strictEqual(Number(rows[0]!.n), 301)
      })
    )
  )

  it.effect("a failed transaction changes nothing; the next one commits; busy_timeout is set on both", () =>
    withClient((sql) =>
      Effect.gen(function* () {
        yield* sql`CREATE TABLE t (n INTEGER)`
        const failed = yield* Effect.flip(
          sql.withTransaction(Effect.zipRight(sql`INSERT INTO t VALUES (1)`, Effect.fail("no" as const)))
        )
        assert.strictEqual(failed, "no")
        yield* sql.withTransaction(sql`INSERT INTO t VALUES (2)`)
        const rows = yield* sql<{ n: number }>`SELECT n FROM t`
        assert.deepStrictEqual(
          rows.map((r) => Number(r.n)),
          [2]
        )
        const outside = yield* sql<{ timeout: number }>`PRAGMA busy_timeout`
        const inside = yield* sql.withTransaction(sql<{ timeout: number }>`PRAGMA busy_timeout`)
        assert.deepStrictEqual([Number(outside[0]!.timeout), Number(inside[0]!.timeout)], [5000, 5000])
      })
    )
  )
})
