/**
 * The relay store as every `relay` admin command opens it on the relay host: the data dir's SQLite file, or
 * `--db` PostgreSQL (env CMDOP_RELAY_DB). The flags, and the
 * ways to open the store from them, live here once for `relay.ts`, `relayKey.ts`, `relayUser.ts` and the listings.
 */
import * as Options from "@effect/cli/Options"
import { ShareService } from "@cmdop/domain/ShareService"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import type { RelayStore } from "@cmdop/relay/RelayStore"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as path from "node:path"
import { CliError, ExitCode } from "../CliError.js"
import * as Output from "../Output.js"
import { RelayHost } from "../RelayHost.js"

export const storeOptions = {
  dataDir: Options.directory("data-dir").pipe(
    Options.withDescription("where the embedded SQLite store lives (default ~/.cmdop/relay)"),
    Options.optional
  ),
  db: Options.redacted("db").pipe(
    Options.withDescription(
      "PostgreSQL URL (postgres://user:pass@host:5432/db) instead of the embedded store; env CMDOP_RELAY_DB"
    ),
    Options.withFallbackConfig(Config.redacted("CMDOP_RELAY_DB")),
    Options.optional
  ),
  json: Options.boolean("json").pipe(Options.withDescription("print one JSON document on stdout"))
}

export interface StoreArgs {
  readonly dataDir: Option.Option<string>
  readonly db: Option.Option<Redacted.Redacted<string>>
}

/**
 * The store the flags name: `--db` PostgreSQL, else the data dir (default ~/.cmdop/relay). A `--db` that is not a
 * PostgreSQL URL, or one given with `--data-dir` (which only the embedded store uses), is refused before anything
 * is opened: the one was read as a host name, the other ignored without a word.
 */
export const storeConfig = (args: StoreArgs) =>
  Effect.gen(function* () {
    const paths = yield* CmdopPaths
    if (Option.isSome(args.db)) {
      // Never the URL itself in the message: it may hold a password.
      if (!/^postgres(ql)?:\/\//i.test(Redacted.value(args.db.value).trim()))
        return yield* new CliError({
          message:
            "--db (or CMDOP_RELAY_DB) is not a PostgreSQL URL: write postgres://user:password@host:5432/database",
          exitCode: ExitCode.usage
        })
      if (Option.isSome(args.dataDir))
        return yield* new CliError({
          message:
            "--data-dir is the embedded store's; with --db (or CMDOP_RELAY_DB) the store is PostgreSQL: drop one of them",
          exitCode: ExitCode.usage
        })
    }
    return {
      dataDir: Option.getOrElse(args.dataDir, () => paths.relayData),
      ...(Option.isSome(args.db) ? { db: args.db.value } : {})
    }
  })

/**
 * `storeConfig` for an admin command (every `relay` command but `serve`). When the data dir holds no store yet it
 * says so before one is created: on a cluster's host that means `--db` was left out, and the command would act on a
 * new, empty SQLite file that no relay serves.
 */
export const adminStoreConfig = (args: StoreArgs) =>
  Effect.gen(function* () {
    const config = yield* storeConfig(args)
    const host = yield* RelayHost
    if (host.inMemory !== true && config.db === undefined && !fs.existsSync(path.join(config.dataDir, "relay.db"))) {
      const paths = yield* CmdopPaths
      yield* Output.notice(
        `cmdop: notice: no relay store in ${paths.display(config.dataDir)} yet; creating an embedded one there (for a cluster's PostgreSQL store, pass --db postgres://… or set CMDOP_RELAY_DB)`
      )
    }
    return config
  })

/** Runs `f` against the relay store the flags name. */
export const withStore = <A, E, R>(args: StoreArgs, f: (store: RelayStore["Type"]) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const config = yield* adminStoreConfig(args)
    const host = yield* RelayHost
    const { RelayStore } = yield* Effect.promise(() => import("@cmdop/relay/RelayStore"))
    return yield* Effect.flatMap(RelayStore, f).pipe(Effect.provide(host.store(config)))
  })

/** Runs `f` against the share service over the relay store the flags name. */
export const withShares = <A, E>(args: StoreArgs, f: (shares: ShareService["Type"]) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const config = yield* adminStoreConfig(args)
    const host = yield* RelayHost
    return yield* Effect.flatMap(ShareService, f).pipe(Effect.provide(host.store(config)))
  })

/** A timestamp as a listing shows it: UTC to the minute (`2026-11-26 16:07Z`). */
export const when = (ms: number): string => new Date(ms).toISOString().slice(0, 16).replace("T", " ") + "Z"
