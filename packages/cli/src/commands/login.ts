/**
 * `cmdop login [--server S] [--web-url URL] [--no-browser]`: signs this CLI in to a relay with the OAuth 2.0
 * Device Authorization Grant (RFC 8628), through `oauth4webapi` (a maintained client, so the relay's endpoints
 * are checked by someone else's code). It discovers the relay's endpoints (RFC 8414), prints the verification URL
 * and the user code (and opens a browser when there is a display), polls at the relay's interval (slower after
 * `slow_down`), and stops with a clear line on `access_denied` or `expired_token`. The tokens go to
 * `~/.cmdop/token.json` (0600, atomic, locked), the last step of the credential chain.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as OAuthSessionLive from "@cmdop/node/OAuthSessionLive"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"
import * as oauth from "oauth4webapi"
import { CliError } from "../CliError.js"
import * as Output from "../Output.js"
import { RelayConnector } from "../RelayConnector.js"
import * as RelayWeb from "./relayWeb.js"

const client: oauth.Client = { client_id: OAuthSessionLive.CLIENT_ID }

/** Opens `url` in the person's browser when there is a display; quietly does nothing otherwise. */
const openBrowser = (url: string) =>
  Effect.sync(() => {
    const command =
      process.platform === "darwin"
        ? "open"
        : process.platform === "win32"
          ? undefined
          : process.env.DISPLAY || process.env.WAYLAND_DISPLAY
            ? "xdg-open"
            : undefined
    if (command === undefined) return false
    const child = spawn(command, [url], { stdio: "ignore", detached: true })
    child.on("error", () => undefined)
    child.unref()
    return true
  })

/** Polls the token endpoint until the person decides or the code expires (RFC 8628 §3.4–3.5). */
const poll = (as: oauth.AuthorizationServer, deviceCode: string, interval: number, insecure: object) =>
  Effect.gen(function* () {
    let wait = interval
    for (;;) {
      yield* Effect.sleep(Duration.seconds(wait))
      const outcome = yield* Effect.tryPromise({
        try: async () =>
          oauth.processDeviceCodeResponse(
            as,
            client,
            await oauth.deviceCodeGrantRequest(as, client, oauth.None(), deviceCode, insecure)
          ),
        catch: (e) => e
      }).pipe(Effect.either)
      if (outcome._tag === "Right") return outcome.right
      const e = outcome.left
      if (!(e instanceof oauth.ResponseBodyError))
        return yield* new CliError({ message: `the relay did not answer the login: ${(e as Error).message}` })
      switch (e.error) {
        case "authorization_pending":
          continue
        case "slow_down":
          wait += 5
          continue
        case "access_denied":
          return yield* new CliError({ message: "the login was denied in the browser; run cmdop login to try again" })
        case "expired_token":
          return yield* new CliError({
            message: "the code expired before it was approved; run cmdop login again for a new one"
          })
        default:
          return yield* new CliError({ message: `the relay refused the login (${e.error}); run cmdop login again` })
      }
    }
  })

export const loginCommand = Command.make(
  "login",
  {
    ...RelayWeb.options,
    noBrowser: Options.boolean("no-browser").pipe(Options.withDescription("print the URL only; never open a browser")),
    json: Options.boolean("json").pipe(Options.withDescription("print the result as one JSON document"))
  },
  (args) =>
    Effect.gen(function* () {
      const target = yield* RelayWeb.target(args)
      const as = yield* RelayWeb.discover(target)
      const insecure = OAuthSessionLive.requestOptions(as.issuer)
      const started = yield* Effect.tryPromise({
        try: async () =>
          oauth.processDeviceAuthorizationResponse(
            as,
            client,
            await oauth.deviceAuthorizationRequest(as, client, oauth.None(), { scope: "connect" }, insecure)
          ),
        catch: (e) => new CliError({ message: `the relay did not start a login: ${(e as Error).message}` })
      })
      const url = started.verification_uri_complete ?? started.verification_uri
      yield* Output.notice(`To sign in, open ${started.verification_uri} and enter the code ${started.user_code}`)
      if (!args.noBrowser && (yield* openBrowser(url))) yield* Output.notice(`(opened ${url} in your browser)`)
      yield* Output.notice("waiting for approval…")
      const tokens = yield* poll(as, started.device_code, started.interval ?? 5, insecure)
      if (tokens.refresh_token === undefined)
        return yield* new CliError({ message: "the relay issued no refresh token; it is not a cmdop relay" })
      const now = yield* Clock.currentTimeMillis
      // Who the relay says this is, for whoami and messages (the login works without it).
      const connector = yield* RelayConnector
      const { RelayClient } = yield* Effect.promise(() => import("@cmdop/domain/RelayClient"))
      const who = yield* Effect.flatMap(RelayClient, (c) => c.whoami).pipe(
        Effect.provide(
          connector.connect({
            apiKey: Redacted.make(tokens.access_token),
            source: "oauth",
            workspace: undefined,
            server: target.server,
            serverSource: "flag"
          })
        ),
        Effect.timeout("5 seconds"),
        Effect.option
      )
      const paths = yield* CmdopPaths
      const file: OAuthSessionLive.TokenFile = {
        issuer: as.issuer,
        token_endpoint: as.token_endpoint!,
        ...(as.revocation_endpoint === undefined ? {} : { revocation_endpoint: as.revocation_endpoint }),
        server: target.server,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_at: now + (tokens.expires_in ?? 0) * 1000,
        ...(Option.isSome(who) ? { user: who.value.principal, workspace: who.value.workspaceName } : {})
      }
      yield* OAuthSessionLive.locked(paths.token, OAuthSessionLive.write(paths.token, file)).pipe(
        Effect.mapError((e) => new CliError({ message: e.message }))
      )
      if (args.json)
        return yield* Output.json({
          server: target.server,
          issuer: as.issuer,
          user: file.user ?? null,
          workspace: file.workspace ?? null
        })
      yield* Output.line(
        Option.isSome(who)
          ? `logged in to ${target.server} as ${who.value.principal} (active workspace ${who.value.workspaceName})`
          : `logged in to ${target.server}`
      )
    })
).pipe(Command.withDescription("sign this CLI in to a relay (device login in the browser); cmdop logout signs out"))
