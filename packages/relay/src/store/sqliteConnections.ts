/**
 * The embedded store's SQLite connections: two, opened once, for the life of the store — one for statements on
 * their own, one for transactions.
 *
 * Why not the libsql client as it comes: its `transaction()` hands the client's connection to the transaction and
 * opens a new one for the next statement, and nothing ever closes the one handed over (upstream
 * tursodatabase/libsql-client-ts#350). Every transaction therefore left a native SQLite connection behind — its
 * page cache, parsed schema and prepared statements, outside the JS heap, freed (if at all) only when the garbage
 * collector, which does not see their size, gets to a tiny JS wrapper. Minting 2,000 share links (one transaction
 * each) took the relay from 120 to ~350 MiB of resident memory with the JS heap near 100 MiB, and
 * `MALLOC_ARENA_MAX=2` changed that by 5% only: a leak, not allocator fragmentation. The new connections also ran
 * without the `busy_timeout` the store set on the first one.
 *
 * Here a transaction runs on the one transaction connection: `BEGIN IMMEDIATE … COMMIT` (or `ROLLBACK`). The SQL
 * client (`@effect/sql-libsql`) already runs one transaction at a time (a semaphore), and statements outside a
 * transaction go to the other connection, as before.
 */
import { type Client, createClient, type InStatement, type Transaction, type TransactionMode } from "@libsql/client"
import * as Effect from "effect/Effect"
import { RelayStoreError } from "./RelayStoreError.js"

/**
 * What every connection is opened with: wait for a writer (the account store shares the file), never fail busy; and
 * in WAL mode (set by the store) `synchronous = NORMAL`: a commit appends to the WAL without an fsync, which
 * happens at checkpoints. A committed write survives the relay's crash or kill (it is in the OS's page cache); only a
 * power cut or a kernel crash may take back the last commits, never corrupting the file. SQLite runs on the event
 * loop every workspace shares, and the fsync per commit (`FULL`) blocked it ~0.85 ms per write transaction (2,000
 * share mints: 2.0 s of the relay's 11 s busy, 0.3 s with `NORMAL`).
 */
const PRAGMAS = ["PRAGMA busy_timeout = 5000", "PRAGMA synchronous = NORMAL"]

const begin = (mode: TransactionMode) => (mode === "write" ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED")

/** A transaction on `tx` (a connection no one else uses while it is open). */
const transactionOn = (tx: Client): Transaction => {
  let open = true
  const ensureOpen = () => {
    if (!open) throw new Error("the transaction is closed")
  }
  const end = async (statement: "COMMIT" | "ROLLBACK") => {
    if (!open) return
    open = false
    await tx.execute(statement)
  }
  return {
    execute: (stmt: InStatement) => (ensureOpen(), tx.execute(stmt)),
    batch: async (stmts: Array<InStatement>) => {
      const results = []
      for (const stmt of stmts) results.push(await (ensureOpen(), tx.execute(stmt)))
      return results
    },
    executeMultiple: (sql: string) => (ensureOpen(), tx.executeMultiple(sql)),
    commit: () => end("COMMIT"),
    rollback: () => end("ROLLBACK"),
    close: () => void end("ROLLBACK").catch(() => undefined),
    get closed() {
      return !open
    }
  }
}

/** The libsql client for the SQLite file at `url`, with a fixed transaction connection; closed with the scope. */
export const make = (url: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const main = createClient({ url })
        const tx = createClient({ url })
        for (const client of [main, tx]) for (const pragma of PRAGMAS) await client.execute(pragma)
        // The client's own `transaction` would replace (and leak) its connection; ours never touches `main`'s.
        const transaction = async (mode: TransactionMode = "write") => {
          await tx.execute(begin(mode))
          return transactionOn(tx)
        }
        return { client: Object.assign(main, { transaction }) as Client, tx }
      },
      catch: (error) =>
        new RelayStoreError({
          reason: "Sql",
          subject: "opening the database",
          detail: error instanceof Error ? error.message : String(error)
        })
    }),
    ({ client, tx }) =>
      Effect.sync(() => {
        client.close()
        tx.close()
      })
  ).pipe(Effect.map(({ client }) => client))
