/**
 * `RelayServer.serve` on PostgreSQL keeps people in the same database and schema as workspaces: both migrate
 * side by side (each with its own migrations table), and a device login started over HTTP is stored there.
 */
import * as AccountStore from "@cmdop/accounts/AccountStore"
import * as RelayServer from "@cmdop/relay/RelayServer"
import { freshPgSchema, withPg } from "@cmdop/test-helpers/Postgres"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

describe("relay serve on PostgreSQL", () => {
  it.scopedLive("workspaces and people share the schema; the OAuth endpoints write there", () =>
    Effect.gen(function* () {
      const { schema, url } = yield* freshPgSchema("cmdop_test")
      const running = yield* RelayServer.serve({
        dataDir: "/nonexistent/unused",
        db: Redacted.make(url),
        grpcPort: 0,
        httpPort: 0,
        host: "127.0.0.1"
      })
      assert.strictEqual(running.store, "postgresql")
      const started = yield* Effect.promise(async () => {
        const r = await fetch(`${running.httpAddress}/oauth/device_authorization`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "client_id=cmdop-cli"
        })
        return { status: r.status, body: (await r.json()) as { verification_uri: string } }
      })
      assert.strictEqual(started.status, 200)
      assert.strictEqual(started.body.verification_uri, `${running.httpAddress}/device`)
      const tables = yield* withPg(
        url,
        (sql) =>
          sql<{ table_name: string }>`SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema}`
      )
      const names = tables.map((t) => t.table_name)
      for (const table of ["workspaces", "machines", "users", "device_codes", AccountStore.migrationsTable])
        assert.include(names, table)
      const codes = yield* withPg(url, (sql) => sql<{ n: string }>`SELECT count(*) AS n FROM device_codes`)
      assert.strictEqual(Number(codes[0]!.n), 1)
    })
  )
})
