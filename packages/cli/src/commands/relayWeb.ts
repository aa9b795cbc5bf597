/**
 * Where a relay's web side is, for `login` and `workspace sync`: the relay's gRPC address (`--server`, then
 * `CMDOP_SERVER` / `CMDOP_GRPC_SERVER`, then the chosen workspace's, then the default `127.0.0.1:50051`) and its
 * HTTP base URL (`--web-url`, then `CMDOP_WEB_URL`, then the one a stored workspace records for that relay, as
 * `cmdop up` does, else `https://host` for a TLS relay and `http://host:8080`, the relay's default HTTP port,
 * otherwise), and the OAuth metadata (RFC 8414) found there.
 */
import * as Options from "@effect/cli/Options"
import * as OAuthSessionLive from "@cmdop/node/OAuthSessionLive"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as oauth from "oauth4webapi"
import { DEFAULT_SERVER } from "@cmdop/domain/CredentialResolver"
import * as RelayNode from "@cmdop/domain/RelayNode"
import * as Workspace from "@cmdop/domain/Workspace"
import { WorkspaceStore } from "@cmdop/domain/WorkspaceStore"
import { CliError } from "../CliError.js"

export const options = {
  server: Options.text("server").pipe(
    Options.withAlias("s"),
    Options.withDescription(
      "the relay's gRPC address host:port (default CMDOP_SERVER, else the active workspace's, else 127.0.0.1:50051)"
    ),
    Options.optional
  ),
  webUrl: Options.text("web-url").pipe(
    Options.withDescription(
      "the relay's web address (default CMDOP_WEB_URL, else the one recorded with the relay, as cmdop up does, else http://<host>:8080)"
    ),
    Options.optional
  )
}

/** The web URL a gRPC address implies when none is given. */
export const defaultWebUrl = (server: string): string => {
  if (/^https:\/\//i.test(server)) return server.replace(/\/+$/, "")
  const host = server.replace(/^[a-z]+:\/\//i, "").replace(/:\d+$/, "")
  return `http://${host}:8080`
}

/** Where a relay's web address came from, as an error names it. */
export type WebSource =
  | { readonly _tag: "flag" }
  | { readonly _tag: "env" }
  | { readonly _tag: "workspace"; readonly workspace: string }
  | { readonly _tag: "default" }

/**
 * The relay's gRPC address and web base URL for this call. The server: `--server`, `CMDOP_SERVER` /
 * `CMDOP_GRPC_SERVER`, the server of the workspace `CMDOP_WORKSPACE` names or else of the active one, then
 * `127.0.0.1:50051`. The web address: `--web-url`, `CMDOP_WEB_URL`, the `web_url` a stored workspace records with
 * that server (`cmdop up` records both), then the one `defaultWebUrl` derives.
 */
export const target = (args: { readonly server: Option.Option<string>; readonly webUrl: Option.Option<string> }) =>
  Effect.gen(function* () {
    const env = (name: string) => (process.env[name] ?? "").trim() || undefined
    const file = yield* Effect.flatMap(WorkspaceStore, (store) => store.load)
    const named = env("CMDOP_WORKSPACE")
    const chosen = Workspace.find(file, named ?? Workspace.activeName(file) ?? "")
    const server = (
      Option.getOrUndefined(args.server) ??
      env("CMDOP_SERVER") ??
      env("CMDOP_GRPC_SERVER") ??
      present(chosen?.server) ??
      DEFAULT_SERVER
    ).trim()
    const given = Option.getOrUndefined(args.webUrl)
    const fromEnv = env("CMDOP_WEB_URL")
    // The chosen workspace first: two workspaces may name one relay, however spelled (localhost is 127.0.0.1).
    const recorded = [chosen, ...file.workspaces].find(
      (w) =>
        w !== undefined &&
        present(w.web_url) !== undefined &&
        present(w.server) !== undefined &&
        RelayNode.covers(w.server!, server)
    )
    const [web, source]: readonly [string, WebSource] =
      given !== undefined
        ? [given, { _tag: "flag" }]
        : fromEnv !== undefined
          ? [fromEnv, { _tag: "env" }]
          : recorded !== undefined
            ? [recorded.web_url!.trim(), { _tag: "workspace", workspace: recorded.name }]
            : [defaultWebUrl(server), { _tag: "default" }]
    return { server, web: web.replace(/\/+$/, ""), source }
  })

const present = (s: string | undefined): string | undefined => (s !== undefined && s.trim() !== "" ? s : undefined)

/** The relay's OAuth metadata, read and checked by `oauth4webapi`. */
export const discover = (target: {
  readonly server: string
  readonly web: string
  readonly source: WebSource
}): Effect.Effect<oauth.AuthorizationServer, CliError> =>
  /^https?:\/\/[^/]/i.test(target.web)
    ? discoverAt(target)
    : Effect.fail(
        new CliError({
          message: `the relay's web address "${target.web}" is not an http:// or https:// URL: give it whole, e.g. --web-url http://relay.example:8080 or --web-url https://relay.example (or CMDOP_WEB_URL)`
        })
      )

/** Why a request reached nothing, in words (fetch says only "fetch failed"; the cause has the code). */
const unreachable = (e: unknown): string => {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause
  switch (cause?.code) {
    case "ECONNREFUSED":
      return "nothing listens there (connection refused)"
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "its host name does not resolve"
    case "ETIMEDOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return "it did not answer (timed out)"
  }
  const message = (e as Error).message
  return typeof cause?.message === "string" && cause.message !== "" ? `${message}: ${cause.message}` : message
}

const discoverAt = (target: { readonly server: string; readonly web: string; readonly source: WebSource }) =>
  Effect.tryPromise({
    try: async () => {
      const issuer = new URL(target.web)
      const response = await oauth.discoveryRequest(issuer, {
        algorithm: "oauth2",
        ...OAuthSessionLive.requestOptions(target.web)
      })
      return oauth.processDiscoveryResponse(issuer, response)
    },
    catch: (e) => {
      const { source, server, web } = target
      const whence =
        source._tag === "flag"
          ? "from --web-url"
          : source._tag === "env"
            ? "from CMDOP_WEB_URL"
            : source._tag === "workspace"
              ? `recorded for relay ${server} in workspace "${source.workspace}"`
              : `relay ${server}'s default web port`
      const hint =
        source._tag === "default"
          ? `is the relay running, and is ${web} its web address? a relay on another --http-port (cmdop up, relay serve) needs --web-url http://<host>:<port> (or CMDOP_WEB_URL)`
          : source._tag === "workspace"
            ? `is the relay running? start it again (cmdop up records its new address), or pass --web-url`
            : "is the relay running, and is it the relay's web address (its --http-port, or its --public-url)?"
      return new CliError({
        message: `cannot reach the relay's login at ${web} (${whence}): ${unreachable(e)}; ${hint}`
      })
    }
  })
