/**
 * People on the relay, wired in: the account store on the relay's own database (the same `<data-dir>/relay.db`,
 * or the same PostgreSQL URL and schema; the account tables migrate under their own migrations table), and the
 * account core's services over it (`OAuthServer` for `cmdop login` and access tokens, `Accounts` for sign-in,
 * members and the audit trail). `relay serve` and `relay user add` both open it here.
 */
import * as Accounts from "@cmdop/accounts/Accounts"
import * as AccountStore from "@cmdop/accounts/AccountStore"
import * as OAuthServer from "@cmdop/accounts/OAuthServer"
import * as Email from "@cmdop/accounts/Email"
import * as Sso from "@cmdop/accounts/Sso"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as path from "node:path"
import type { OAuthAuthenticate } from "./Authenticator.js"
import * as OAuthCaller from "./internal/oauthCaller.js"
import type { RelayStore } from "./store/service.js"

/** The account services the relay's HTTP endpoints and gRPC authentication use. */
export type Services = AccountStore.AccountStore | OAuthServer.OAuthServer | Accounts.Accounts

/** Where the relay's store is: the data dir's SQLite file, or PostgreSQL. */
export interface StoreOptions {
  readonly dataDir: string
  readonly db?: Redacted.Redacted<string>
}

/** The account store in memory, for a relay whose own store is in memory (the CLI's in-memory world, tests). */
export const memoryStoreLayer: Layer.Layer<AccountStore.AccountStore> = AccountStore.layerMemory

/** The account store next to the relay's store (same file or database). */
export const storeLayer = (
  options: StoreOptions
): Layer.Layer<AccountStore.AccountStore, AccountStore.AccountStoreError> =>
  options.db !== undefined
    ? AccountStore.layerPostgres({ url: options.db })
    : AccountStore.layerSqlite({ path: path.join(options.dataDir, "relay.db") })

/**
 * How long a `cmdop login` code may wait for approval, and how often the CLI is told to poll: 10 minutes and 5 s,
 * unless the environment says otherwise (`CMDOP_RELAY_DEVICE_CODE_LIFETIME`, `CMDOP_RELAY_DEVICE_POLL_INTERVAL`,
 * durations such as "2 minutes" or "1 second"; tests shorten them).
 */
export const deviceFlowConfig = Config.all({
  deviceCodeLifetime: Config.duration("CMDOP_RELAY_DEVICE_CODE_LIFETIME").pipe(
    Config.withDefault(Duration.minutes(10))
  ),
  pollInterval: Config.duration("CMDOP_RELAY_DEVICE_POLL_INTERVAL").pipe(Config.withDefault(Duration.seconds(5)))
})

/**
 * The OAuth server and the accounts service over the store given. `issuer` is the relay's public URL, read on
 * every use (with `--http-port 0` it is known only once the port is bound).
 */
export const servicesLayer = <E, R>(
  issuer: () => string,
  store: Layer.Layer<AccountStore.AccountStore, E, R>
): Layer.Layer<Services, E | ConfigError.ConfigError, R> => {
  const defaults = OAuthServer.defaultConfig("http://relay.invalid")
  const oauth = Layer.unwrapEffect(
    Effect.map(deviceFlowConfig, (flow) =>
      OAuthServer.layer({
        clients: defaults.clients,
        deviceCodeLifetime: flow.deviceCodeLifetime,
        pollInterval: flow.pollInterval,
        accessTokenLifetime: defaults.accessTokenLifetime,
        refreshTokenLifetime: defaults.refreshTokenLifetime,
        get issuer() {
          return issuer().replace(/\/+$/, "")
        }
      })
    )
  )
  return Layer.provideMerge(Layer.merge(oauth, Accounts.layer()), store)
}

/** Single sign-on with a provider; its callback is `<issuer>/sso/callback` (read at each sign-in). */
export const ssoLayer = (
  issuer: () => string,
  sso: Omit<Sso.SsoConfig, "redirectUri">
): Layer.Layer<Sso.Sso, never, AccountStore.AccountStore | Accounts.Accounts> =>
  Sso.layer({
    ...sso,
    get redirectUri() {
      return `${issuer().replace(/\/+$/, "")}/sso/callback`
    }
  })

/**
 * The person with this email on the relay, for the relay host's commands: `None` when there is none, or when the
 * text is not an email at all.
 */
export const findUser = (email: string) =>
  Effect.flatMap(AccountStore.AccountStore, (store) =>
    Either.match(Email.fromInput(email), {
      onLeft: () => Effect.succeed(Option.none()),
      onRight: (valid) => store.findUserByEmail(valid)
    })
  )

/**
 * How the relay core checks logins (`RelayCore.layer({ oauth })`), as `relay serve` wires it: every call against
 * the store, no cache, and the person check for what a person left behind (`internal/oauthCaller.ts`). For
 * programs and tests that embed a relay core with accounts.
 */
export const oauthAuthenticate = (
  oauth: OAuthServer.OAuthServer["Type"],
  store: RelayStore["Type"],
  server: string
): OAuthAuthenticate => OAuthCaller.make({ oauth, store, server }).authenticate

/** The accounts service's and the store's tags, for the relay host's commands (`relay user …`). */
export { Accounts } from "@cmdop/accounts/Accounts"
export { AccountStore } from "@cmdop/accounts/AccountStore"
export type { AccountStoreError } from "@cmdop/accounts/AccountStore"
