/**
 * Where a relay's web side is, for `login`, `logout` and `workspace sync`: the relay's gRPC address (`--server`,
 * then `CMDOP_SERVER` / `CMDOP_GRPC_SERVER`, then the default `127.0.0.1:50051`) and its HTTP base URL
 * (`--web-url`, then `CMDOP_WEB_URL`, else `https://host` for a TLS relay and `http://host:8080`, the relay's
 * default HTTP port, otherwise), and the OAuth metadata (RFC 8414) found there.
 */
import * as Options from "@effect/cli/Options"
import * as OAuthSessionLive from "@cmdop/node/OAuthSessionLive"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as oauth from "oauth4webapi"
import { CliError } from "../CliError.js"

export const options = {
  server: Options.text("server").pipe(
    Options.withAlias("s"),
    Options.withDescription("the relay's gRPC address host:port (default CMDOP_SERVER, else 127.0.0.1:50051)"),
    Options.optional
  ),
  webUrl: Options.text("web-url").pipe(
    Options.withDescription("the relay's web address (default CMDOP_WEB_URL, else http://<host>:8080)"),
    Options.optional
  )
}

/** The web URL a gRPC address implies when none is given. */
export const defaultWebUrl = (server: string): string => {
  if (/^https:\/\//i.test(server)) return server.replace(/\/+$/, "")
  const host = server.replace(/^[a-z]+:\/\//i, "").replace(/:\d+$/, "")
  return `http://${host}:8080`
}

/** The relay's gRPC address and web base URL for this call. */
export const target = (args: { readonly server: Option.Option<string>; readonly webUrl: Option.Option<string> }) =>
  Effect.sync(() => {
    const env = (name: string) => (process.env[name] ?? "").trim() || undefined
    const server =
      Option.getOrUndefined(args.server) ?? env("CMDOP_SERVER") ?? env("CMDOP_GRPC_SERVER") ?? "127.0.0.1:50051"
    const web = (Option.getOrUndefined(args.webUrl) ?? env("CMDOP_WEB_URL") ?? defaultWebUrl(server)).replace(
      /\/+$/,
      ""
    )
    return { server, web }
  })

/** The relay's OAuth metadata, read and checked by `oauth4webapi`. */
export const discover = (web: string) =>
  /^https?:\/\/[^/]/i.test(web)
    ? discoverAt(web)
    : Effect.fail(
        new CliError({
          message: `the relay's web address "${web}" is not an http:// or https:// URL: give it whole, e.g. --web-url http://relay.example:8080 or --web-url https://relay.example (or CMDOP_WEB_URL)`
        })
      )

const discoverAt = (web: string) =>
  Effect.tryPromise({
    try: async () => {
      const issuer = new URL(web)
      const response = await oauth.discoveryRequest(issuer, {
        algorithm: "oauth2",
        ...OAuthSessionLive.requestOptions(web)
      })
      return oauth.processDiscoveryResponse(issuer, response)
    },
    catch: (e) =>
      new CliError({
        message: `cannot reach the relay's login at ${web}: ${(e as Error).message} (is it the relay's web address? pass --web-url)`
      })
  })
