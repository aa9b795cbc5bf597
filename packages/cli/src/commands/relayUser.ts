/**
 * `cmdop relay user add <email> --workspace W --role R`, run on the relay host: adds a person to a workspace of
 * this relay (creating the workspace when the relay has none by that name) and prints a one-time sign-in link
 * (24 h, single use) where they set their password. Opens the relay's store and its account tables directly (the
 * data dir's SQLite file, or `--db` PostgreSQL), like the other `relay` admin commands.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Workspace from "@cmdop/domain/Workspace"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { CliError } from "../CliError.js"
import * as Output from "../Output.js"
import { RelayHost } from "../RelayHost.js"
import { adminStoreConfig, type StoreArgs, storeOptions as relayStoreOptions } from "./relayStore.js"
import type * as RelayAccountsModule from "@cmdop/relay/RelayAccounts"
import type { RelayStore } from "@cmdop/relay/RelayStore"

const storeOptions = {
  ...relayStoreOptions,
  email: Args.text({ name: "email" }).pipe(Args.withDescription("the person's email"))
}

/** The relay's web address a sign-in link assumes when neither --public-url nor CMDOP_RELAY_PUBLIC_URL names one. */
const DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"

const publicUrlOption = Options.text("public-url").pipe(
  Options.withDescription(
    `the relay's public URL the link points at; env CMDOP_RELAY_PUBLIC_URL (default ${DEFAULT_PUBLIC_URL})`
  ),
  Options.withFallbackConfig(Config.string("CMDOP_RELAY_PUBLIC_URL")),
  Options.optional
)

const workspaceName = (raw: string) =>
  Schema.decodeUnknown(Workspace.WorkspaceName)(raw).pipe(
    Effect.mapError(
      () => new CliError({ message: `invalid workspace name "${raw}": use letters, digits, '.', '_' or '-'` })
    )
  )

/**
 * Runs `f` with the relay's store and its account services, as the flags name them: the data dir's SQLite file or
 * PostgreSQL (the relay host's `RelayHost`; in the CLI's in-memory world, its in-memory relay). A relay serving on
 * the same database sees every change on its very next call.
 */
const withAccounts = <A, E>(
  args: StoreArgs,
  publicUrl: string,
  f: (
    store: RelayStore["Type"],
    accounts: RelayAccountsModule.Accounts["Type"],
    module: typeof RelayAccountsModule
  ) => Effect.Effect<A, E, RelayAccountsModule.AccountStore>
) =>
  Effect.gen(function* () {
    const config = yield* adminStoreConfig(args)
    const host = yield* RelayHost
    const { RelayStore } = yield* Effect.promise(() => import("@cmdop/relay/RelayStore"))
    const RelayAccounts = yield* Effect.promise(() => import("@cmdop/relay/RelayAccounts"))
    const services = Layer.merge(
      host.store(config),
      RelayAccounts.servicesLayer(() => publicUrl, host.accounts(config))
    )
    return yield* Effect.flatMap(Effect.all([RelayStore, RelayAccounts.Accounts]), ([store, accounts]) =>
      f(store, accounts, RelayAccounts)
    ).pipe(
      Effect.provide(services),
      Effect.mapError((e) => (e instanceof CliError ? e : new CliError({ message: (e as Error).message })))
    )
  })

const userAdd = Command.make(
  "add",
  {
    ...storeOptions,
    workspace: Options.text("workspace").pipe(Options.withDescription("the workspace on this relay (created if new)")),
    role: Options.choice("role", ["owner", "member", "viewer"]).pipe(
      Options.withDescription(
        "owner (keys, members, everything), member (reach machines), viewer (list only); for someone already in the workspace this changes their role, effective on their next call"
      ),
      Options.withDefault("member" as const)
    ),
    publicUrl: publicUrlOption
  },
  (args) =>
    Effect.gen(function* () {
      const name = yield* workspaceName(args.workspace)
      const publicUrl = Option.getOrElse(args.publicUrl, () => DEFAULT_PUBLIC_URL)
      const added = yield* withAccounts(args, publicUrl, (store, accounts) =>
        Effect.gen(function* () {
          const existing = yield* Effect.option(store.getWorkspace(name))
          const workspace = Option.isSome(existing) ? existing.value : (yield* store.createWorkspace(name)).workspace
          const result = yield* accounts.addMember({
            actor: "relay-host",
            email: args.email,
            workspaceId: workspace.id,
            role: args.role
          })
          return { workspace, created: Option.isNone(existing), ...result }
        })
      )
      const link =
        added.link === undefined
          ? undefined
          : `${publicUrl.replace(/\/+$/, "")}/signin/${Redacted.value(added.link.token)}`
      if (args.json)
        return yield* Output.json({
          user: added.user.email,
          user_id: added.user.id,
          workspace: name,
          workspace_id: added.workspace.id,
          role: args.role,
          sign_in_link: link ?? null
        })
      if (added.created) yield* Output.line(`created workspace ${name} (${added.workspace.id})`)
      yield* Output.line(`${added.user.email} is ${args.role} of ${name}`)
      if (link !== undefined) {
        yield* Output.line(`sign-in link: ${link}`)
        yield* Output.notice("the link works once, for 24 hours; send it to the person privately")
        // The admin command cannot know where the relay serves its pages: a link to the default may lead nowhere.
        if (Option.isNone(args.publicUrl))
          yield* Output.notice(
            `the link assumes the relay's web address is ${DEFAULT_PUBLIC_URL}; when the relay serves elsewhere, pass its --public-url here too (or set CMDOP_RELAY_PUBLIC_URL)`
          )
      }
    })
).pipe(
  Command.withDescription(
    "add a person to a workspace of this relay (or change their role) and print a one-time sign-in link"
  )
)

const userRemove = Command.make(
  "remove",
  {
    ...storeOptions,
    workspace: Options.text("workspace").pipe(Options.withDescription("the workspace on this relay"))
  },
  (args) =>
    Effect.gen(function* () {
      const name = yield* workspaceName(args.workspace)
      yield* withAccounts(args, "http://relay.invalid", (store, accounts) =>
        Effect.gen(function* () {
          const workspace = yield* store.getWorkspace(name)
          const members = yield* accounts.listMembers("relay-host", workspace.id)
          const member = members.find((m) => m.user.email.toLowerCase() === args.email.trim().toLowerCase())
          if (member === undefined)
            return yield* new CliError({
              message: `${args.email} is not a member of ${name}; "cmdop relay user add ${args.email} --workspace ${name}" adds them`
            })
          yield* accounts.removeMember({ actor: "relay-host", workspaceId: workspace.id, userId: member.user.id })
        })
      )
      if (args.json) return yield* Output.json({ user: args.email, workspace: name, removed: true })
      yield* Output.line(`${args.email} is no longer a member of ${name}: their next call there is refused`)
    })
).pipe(Command.withDescription("remove a person from a workspace: their next call is refused, live sessions end"))

/** `disable`/`enable`: a person's sign-ins, web sessions and logins (disabling ends them all at once). */
const userSetDisabled = (disabled: boolean) =>
  Command.make(disabled ? "disable" : "enable", storeOptions, (args) =>
    Effect.gen(function* () {
      const user = yield* withAccounts(args, "http://relay.invalid", (_store, accounts, RelayAccounts) =>
        Effect.gen(function* () {
          const found = yield* RelayAccounts.findUser(args.email)
          if (Option.isNone(found))
            return yield* new CliError({ message: `there is no person "${args.email}" on this relay` })
          return yield* accounts.setDisabled(found.value.id, disabled)
        })
      )
      if (args.json) return yield* Output.json({ user: user.email, disabled: user.disabled })
      yield* Output.line(
        disabled
          ? `${user.email} is disabled: signed out everywhere, every login revoked; their next call is refused`
          : `${user.email} may sign in again`
      )
    })
  ).pipe(
    Command.withDescription(
      disabled
        ? "sign a person out everywhere and refuse their logins (web sessions and cmdop login), at once"
        : "let a disabled person sign in again"
    )
  )

/** `cmdop relay user …`. */
export const relayUserCommand = Command.make("user").pipe(
  Command.withDescription("people on this relay"),
  Command.withSubcommands([userAdd, userRemove, userSetDisabled(true), userSetDisabled(false)])
)

/** `relay serve`'s single sign-on flags (an OpenID Connect provider; the callback is `<public-url>/sso/callback`). */
export const ssoOptions = {
  oidcIssuer: Options.text("oidc-issuer").pipe(
    Options.withDescription("single sign-on: the OpenID Connect provider's issuer URL"),
    Options.optional
  ),
  oidcClientId: Options.text("oidc-client-id").pipe(
    Options.withDescription("single sign-on: this relay's client id at the provider"),
    Options.optional
  ),
  oidcClientSecret: Options.redacted("oidc-client-secret").pipe(
    Options.withDescription("single sign-on: the client secret; env CMDOP_OIDC_CLIENT_SECRET"),
    Options.withFallbackConfig(Config.redacted("CMDOP_OIDC_CLIENT_SECRET")),
    Options.optional
  )
}

/** The single sign-on settings the flags give (none, or all three). */
export const ssoConfig = (args: {
  readonly oidcIssuer: Option.Option<string>
  readonly oidcClientId: Option.Option<string>
  readonly oidcClientSecret: Option.Option<Redacted.Redacted<string>>
}) =>
  Effect.gen(function* () {
    const given = [args.oidcIssuer, args.oidcClientId, args.oidcClientSecret].filter((o) =>
      Option.isSome(o as Option.Option<unknown>)
    ).length
    if (given === 0) return {}
    if (!Option.isSome(args.oidcIssuer) || !Option.isSome(args.oidcClientId) || !Option.isSome(args.oidcClientSecret))
      return yield* new CliError({
        message: "--oidc-issuer, --oidc-client-id and --oidc-client-secret go together",
        exitCode: 2
      })
    return {
      sso: {
        issuer: args.oidcIssuer.value,
        clientId: args.oidcClientId.value,
        clientSecret: args.oidcClientSecret.value,
        allowInsecureRequests: args.oidcIssuer.value.startsWith("http://")
      }
    }
  })
