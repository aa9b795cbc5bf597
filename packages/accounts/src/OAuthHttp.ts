/**
 * The OAuth endpoints over `@effect/platform` HTTP, for the relay to mount on its HTTP port: the RFC 8414
 * metadata document, device authorization (RFC 8628 §3.1), the token endpoint (device code and refresh token
 * grants) and revocation (RFC 7009). Requests are `application/x-www-form-urlencoded`; answers are JSON with
 * `Cache-Control: no-store`. Errors follow RFC 6749 §5.2; a store failure is a 500 `server_error` (the store's
 * messages never hold secrets). The `/device` approval page belongs to the relay's web cabinet.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import type { AccountStoreError } from "./AccountStore.js"
import { paths } from "./OAuthMetadata.js"
import { OAuthError, oauthError } from "./OAuthError.js"
import { OAuthServer } from "./OAuthServer.js"

const noStore = { "cache-control": "no-store", pragma: "no-cache" }

/** The form parameters of a POST body; a parameter given twice is `invalid_request` (RFC 6749 §3.2). */
const formParams = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const type = request.headers["content-type"] ?? ""
  if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
    return yield* oauthError("invalid_request", "send the parameters as application/x-www-form-urlencoded")
  }
  const params = yield* Effect.mapError(request.urlParamsBody, () =>
    oauthError("invalid_request", "the request body could not be read")
  )
  const out: Record<string, string> = {}
  for (const [key, value] of params) {
    if (key in out) return yield* oauthError("invalid_request", `parameter ${key} is given more than once`)
    out[key] = value
  }
  return out
})

/** Answers an endpoint's outcome: `ok` on success, the RFC 6749 error body otherwise. */
const respond = <A, R>(
  effect: Effect.Effect<A, OAuthError | AccountStoreError, R>,
  ok: (a: A) => HttpServerResponse.HttpServerResponse
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  effect.pipe(
    Effect.map(ok),
    Effect.catchAll((error) =>
      error instanceof OAuthError
        ? Effect.succeed(HttpServerResponse.unsafeJson(error.body, { status: error.status, headers: noStore }))
        : Effect.as(
            Effect.logError(`OAuth endpoint failed: ${error.message}`),
            HttpServerResponse.unsafeJson(
              { error: "server_error", error_description: error.message },
              { status: 500, headers: noStore }
            )
          )
    )
  )

/** GET: the RFC 8414 metadata document. */
export const metadata: Effect.Effect<HttpServerResponse.HttpServerResponse, never, OAuthServer> = Effect.map(
  OAuthServer,
  (server) => HttpServerResponse.unsafeJson(server.metadata, { headers: { "cache-control": "public, max-age=300" } })
)

/** POST: starts a device flow (`client_id`, optional `scope`). */
export const deviceAuthorization = respond(
  Effect.gen(function* () {
    const server = yield* OAuthServer
    const params = yield* formParams
    return yield* server.deviceAuthorization({ clientId: params.client_id, scope: params.scope })
  }),
  (body) => HttpServerResponse.unsafeJson(body, { headers: noStore })
)

/** POST: the token endpoint. */
export const token = respond(
  Effect.gen(function* () {
    const server = yield* OAuthServer
    return yield* server.token(yield* formParams)
  }),
  (body) => HttpServerResponse.unsafeJson(body, { headers: noStore })
)

/** POST: revocation; 200 with an empty body whether or not the token was known (RFC 7009 §2.2). */
export const revoke = respond(
  Effect.gen(function* () {
    const server = yield* OAuthServer
    return yield* server.revoke(yield* formParams)
  }),
  () => HttpServerResponse.empty({ status: 200, headers: noStore })
)

/** The four endpoints at their `paths`, ready to be concatenated into the relay's router. */
export const router: HttpRouter.HttpRouter<never, OAuthServer> = HttpRouter.empty.pipe(
  HttpRouter.get(paths.metadata, metadata),
  HttpRouter.post(paths.deviceAuthorization, deviceAuthorization),
  HttpRouter.post(paths.token, token),
  HttpRouter.post(paths.revocation, revoke)
)
