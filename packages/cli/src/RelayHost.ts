/**
 * The relay's store as the commands that run on the relay host open it (`relay serve`, `relay workspace create`,
 * `relay key rotate`, `relay signing-key …`, `up`): the embedded SQLite file in the data dir, or PostgreSQL with
 * `--db`. `layerStore` loads the relay's store modules lazily; the in-process variant (`InProcessRelay.ts`) hands
 * out the one in-memory store its relay runs on.
 */
import type { ShareService } from "@cmdop/domain/ShareService"
import type { AccountStore, AccountStoreError } from "@cmdop/relay/RelayAccounts"
import type { RelayStore } from "@cmdop/relay/RelayStore"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as path from "node:path"
import { CliError } from "./CliError.js"

export interface StoreConfig {
  /** Where the embedded store lives (`relay.db`). */
  readonly dataDir: string
  /** A PostgreSQL URL; when set, the store is there instead of the data dir. */
  readonly db?: Redacted.Redacted<string>
}

export class RelayHost extends Context.Tag("@cmdop/cli/RelayHost")<
  RelayHost,
  {
    /** The store (and the share service over it) that `config` names, for the life of the layer's scope. */
    readonly store: (config: StoreConfig) => Layer.Layer<RelayStore | ShareService, CliError>
    /**
     * The account tables next to that store (`relay user …`, and the people of `relay serve`): the same file or
     * database; in the in-memory world, the in-memory accounts of its relay.
     */
    readonly accounts: (config: StoreConfig) => Layer.Layer<AccountStore, AccountStoreError>
    /**
     * True in the CLI's in-memory world: `relay serve` then writes nothing to disk (no data dir, no lock file, no
     * SQLite file). Absent: the real relay host.
     */
    readonly inMemory?: boolean
    /** How the store is named in messages: `sqlite <file>` or `postgresql`. */
    readonly describe: (config: StoreConfig) => string
  }
>() {}

/** SQLite in the data dir, or PostgreSQL: the real relay host. */
export const layerStore: Layer.Layer<RelayHost> = Layer.succeed(
  RelayHost,
  RelayHost.of({
    store: (config) =>
      Layer.unwrapEffect(
        Effect.gen(function* () {
          const RelayStoreModule = yield* Effect.promise(() => import("@cmdop/relay/RelayStore"))
          const ShareServiceLive = yield* Effect.promise(() => import("@cmdop/relay/share/ShareServiceLive"))
          const store =
            config.db !== undefined
              ? RelayStoreModule.layerPostgres({ url: config.db })
              : RelayStoreModule.layerSqlite({ path: path.join(config.dataDir, "relay.db") })
          return Layer.provideMerge(ShareServiceLive.layer, store).pipe(
            Layer.mapError((e) => new CliError({ message: e.message }))
          )
        })
      ),
    accounts: (config) =>
      Layer.unwrapEffect(
        Effect.map(
          Effect.promise(() => import("@cmdop/relay/RelayAccounts")),
          (RelayAccounts) => RelayAccounts.storeLayer(config)
        )
      ),
    describe: (config) => (config.db !== undefined ? "postgresql" : `sqlite ${path.join(config.dataDir, "relay.db")}`)
  })
)
