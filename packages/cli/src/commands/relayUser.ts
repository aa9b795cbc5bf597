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
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { CliError } from "../CliError.js"
import * as Output from "../Output.js"
import { RelayHost } from "../RelayHost.js"

const options = {
  dataDir: Options.directory("data-dir").pipe(
    Options.withDescription("where the embedded SQLite store lives (default ~/.cmdop/relay)"),
    Options.optional
  ),
  db: Options.redacted("db").pipe(
    Options.withDescription("PostgreSQL URL instead of the embedded store; env CMDOP_RELAY_DB"),
    Options.withFallbackConfig(Config.redacted("CMDOP_RELAY_DB")),
    Options.optional
  ),
  json: Options.boolean("json").pipe(Options.withDescription("print one JSON document on stdout")),
  workspace: Options.text("workspace").pipe(Options.withDescription("the workspace on this relay (created if new)")),
  role: Options.choice("role", ["owner", "member", "viewer"]).pipe(
    Options.withDescription("owner (keys, members, everything), member (reach machines), viewer (list only)"),
    Options.withDefault("member" as const)
  ),
  publicUrl: Options.text("public-url").pipe(
    Options.withDescription("the relay's public URL the link points at; env CMDOP_RELAY_PUBLIC_URL"),
    Options.withFallbackConfig(Config.string("CMDOP_RELAY_PUBLIC_URL")),
    Options.withDefault("http://127.0.0.1:8080")
  ),
  email: Args.text({ name: "email" }).pipe(Args.withDescription("the person's email"))
}

const userAdd = Command.make("add", options, (args) =>
  Effect.gen(function* () {
    const paths = yield* CmdopPaths
    const config = {
      dataDir: Option.getOrElse(args.dataDir, () => paths.relayData),
      ...(Option.isSome(args.db) ? { db: args.db.value } : {})
    }
    const name = yield* Schema.decodeUnknown(Workspace.WorkspaceName)(args.workspace).pipe(
      Effect.mapError(
        () =>
          new CliError({ message: `invalid workspace name "${args.workspace}": use letters, digits, '.', '_' or '-'` })
      )
    )
    const host = yield* RelayHost
    const { RelayStore } = yield* Effect.promise(() => import("@cmdop/relay/RelayStore"))
    const RelayAccounts = yield* Effect.promise(() => import("@cmdop/relay/RelayAccounts"))
    const services = Layer.merge(
      host.store(config),
      RelayAccounts.servicesLayer(
        () => args.publicUrl,
        RelayAccounts.storeLayer(config).pipe(Layer.mapError((e) => new CliError({ message: e.message })))
      )
    )
    const added = yield* Effect.gen(function* () {
      const store = yield* RelayStore
      const accounts = yield* RelayAccounts.Accounts
      const existing = yield* Effect.option(store.getWorkspace(name))
      const workspace = Option.isSome(existing) ? existing.value : (yield* store.createWorkspace(name)).workspace
      const result = yield* accounts.addMember({
        actor: "relay-host",
        email: args.email,
        workspaceId: workspace.id,
        role: args.role
      })
      return { workspace, created: Option.isNone(existing), ...result }
    }).pipe(
      Effect.provide(services),
      Effect.mapError((e) => (e instanceof CliError ? e : new CliError({ message: e.message })))
    )
    const link =
      added.link === undefined
        ? undefined
        : `${args.publicUrl.replace(/\/+$/, "")}/signin/${Redacted.value(added.link.token)}`
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
    }
  })
).pipe(Command.withDescription("add a person to a workspace of this relay and print a one-time sign-in link"))

/** `cmdop relay user …`. */
export const relayUserCommand = Command.make("user").pipe(
  Command.withDescription("people on this relay"),
  Command.withSubcommands([userAdd])
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
