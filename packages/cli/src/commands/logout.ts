/**
 * `cmdop logout`: revokes the login at the relay (RFC 7009, through `oauth4webapi`; revoking the refresh token
 * ends the access token too) and deletes `~/.cmdop/token.json`. The file goes even when the relay cannot be
 * reached, and then the output says the relay was not told.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as OAuthSessionLive from "@cmdop/node/OAuthSessionLive"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as oauth from "oauth4webapi"
import { CliError } from "../CliError.js"
import * as Output from "../Output.js"

export const logoutCommand = Command.make(
  "logout",
  { json: Options.boolean("json").pipe(Options.withDescription("print the result as one JSON document")) },
  (args) =>
    Effect.gen(function* () {
      const paths = yield* CmdopPaths
      const outcome = yield* OAuthSessionLive.locked(
        paths.token,
        Effect.gen(function* () {
          const token = yield* OAuthSessionLive.read(paths.token)
          if (Option.isNone(token)) return { loggedIn: false, revoked: false, server: undefined }
          const as = OAuthSessionLive.authorizationServer(token.value)
          const revoked = yield* Effect.tryPromise(async () =>
            oauth.processRevocationResponse(
              await oauth.revocationRequest(
                as,
                { client_id: OAuthSessionLive.CLIENT_ID },
                oauth.None(),
                token.value.refresh_token,
                OAuthSessionLive.requestOptions(token.value.issuer)
              )
            )
          ).pipe(
            Effect.as(true),
            Effect.orElseSucceed(() => false)
          )
          yield* OAuthSessionLive.remove(paths.token)
          return { loggedIn: true, revoked, server: token.value.server }
        })
      ).pipe(Effect.mapError((e) => new CliError({ message: e.message })))
      if (args.json)
        return yield* Output.json({
          logged_out: outcome.loggedIn,
          revoked: outcome.revoked,
          server: outcome.server ?? null
        })
      if (!outcome.loggedIn) return yield* Output.line("not logged in (no token.json); nothing to do")
      yield* Output.line(`logged out of ${outcome.server}`)
      // What a person logging out of a lost laptop's login must know: it still works at the relay.
      if (!outcome.revoked)
        yield* Output.notice(
          "the relay could not be told (unreachable), so the login was deleted here only: its tokens stay valid at the relay until they expire (the access token within 72 h, the refresh token within 30 days); to end them now, sign in on the relay's web page with a new sign-in link from its admin (setting a password that way ends every login of yours)"
        )
    })
).pipe(Command.withDescription("sign this CLI out: revoke the login at the relay and delete ~/.cmdop/token.json"))
