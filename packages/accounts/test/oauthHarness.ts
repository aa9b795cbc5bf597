/**
 * A relay-shaped OAuth server for tests: `OAuthServer` over the ambient account store, and `OAuthHttp`
 * served on 127.0.0.1 by @effect/platform-node's HTTP server; plus the client side driven by `oauth4webapi`, a
 * maintained client library, so the endpoints are checked by someone else's code.
 */
import * as AccountStore from "@cmdop/accounts/AccountStore"
import * as OAuthHttp from "@cmdop/accounts/OAuthHttp"
import * as OAuthServer from "@cmdop/accounts/OAuthServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { createServer } from "node:http"
import * as oauth from "oauth4webapi"

export const client: oauth.Client = { client_id: "cmdop-cli" }
const auth = oauth.None()
const insecure = { [oauth.allowInsecureRequests]: true }

/** The relay side and an oauth4webapi client that discovered it through its metadata. */
export const harness = Effect.gen(function* () {
  const store = yield* AccountStore.AccountStore
  const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
  if (server.address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  const issuer = `http://127.0.0.1:${server.address.port}`
  const context = yield* Layer.build(
    OAuthServer.layer(OAuthServer.defaultConfig(issuer)).pipe(
      Layer.provideMerge(Layer.succeed(AccountStore.AccountStore, store))
    )
  )
  yield* server.serve(
    OAuthHttp.router.pipe(
      HttpRouter.provideService(OAuthServer.OAuthServer, Context.get(context, OAuthServer.OAuthServer))
    )
  )
  const as = yield* Effect.promise(async () => {
    const url = new URL(issuer)
    return oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, { algorithm: "oauth2", ...insecure }))
  })
  return {
    issuer,
    as,
    store: Context.get(context, AccountStore.AccountStore),
    oauth: Context.get(context, OAuthServer.OAuthServer)
  }
})

export type Harness = Effect.Effect.Success<typeof harness>

/** An OAuth error response as the client library reports it: its `error` code and description. */
export interface ClientError {
  readonly error: string
  readonly description: string | undefined
  readonly status: number
}

/** Runs a client call; an OAuth error response becomes `Left`, anything else unexpected is a defect. */
const attempt = <A>(f: () => Promise<A>): Effect.Effect<Either.Either<A, ClientError>> =>
  Effect.promise(() =>
    f().then(Either.right, (error: unknown) => {
      if (error instanceof oauth.ResponseBodyError) {
        return Either.left({ error: error.error, description: error.error_description, status: error.status })
      }
      throw error
    })
  )

/** RFC 8628 §3.1 through the client library. */
export const startDeviceFlow = (h: Harness, c: oauth.Client = client) =>
  attempt(async () =>
    oauth.processDeviceAuthorizationResponse(
      h.as,
      c,
      await oauth.deviceAuthorizationRequest(h.as, c, auth, { scope: "connect" }, insecure)
    )
  )

/** One poll of the token endpoint with a device code. */
export const pollToken = (h: Harness, deviceCode: string) =>
  attempt(async () =>
    oauth.processDeviceCodeResponse(
      h.as,
      client,
      await oauth.deviceCodeGrantRequest(h.as, client, auth, deviceCode, insecure)
    )
  )

/** One refresh. */
export const refresh = (h: Harness, refreshToken: string) =>
  attempt(async () =>
    oauth.processRefreshTokenResponse(
      h.as,
      client,
      await oauth.refreshTokenGrantRequest(h.as, client, auth, refreshToken, insecure)
    )
  )

/** RFC 7009 revocation. */
export const revoke = (h: Harness, token: string) =>
  attempt(async () =>
    oauth.processRevocationResponse(await oauth.revocationRequest(h.as, client, auth, token, insecure))
  )
