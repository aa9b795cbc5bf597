/**
 * Everything accounts add to the relay's HTTP port, as one router: the OAuth endpoints of `@cmdop/accounts`
 * (metadata, device authorization, token, revocation), `/device`, the sign-in pages, the web cabinet, its
 * stylesheet, `/apix/machines/workspaces/`, and `/` (what this is, and where to sign in).
 */
import * as OAuthHttp from "@cmdop/accounts/OAuthHttp"
import { OAuthServer } from "@cmdop/accounts/OAuthServer"
import { Sso } from "@cmdop/accounts/Sso"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Effect from "effect/Effect"
import type { RefusalThrottle } from "../internal/refusalThrottle.js"
import * as Cabinet from "./Cabinet.js"
import * as ConnectLinks from "./ConnectLinks.js"
import { stylesheet } from "./CabinetPage.js"
import * as DevicePage from "./DevicePage.js"
import * as SignInPages from "./SignInPages.js"
import * as SsoPages from "./SsoPages.js"
import * as WorkspacesApi from "./WorkspacesApi.js"

/**
 * The router; `secure`: the relay's public URL is https (session cookies get `Secure`); `sso`: single sign-on is
 * configured (an `Sso` service is then in context) and `/sso/*` is served.
 */
export const make = (options: {
  readonly secure: boolean
  readonly publicUrl: () => string
  readonly sso: boolean
  /** The relay's per-source budget of refused credentials (`refusalThrottle.ts`), which wrong passwords spend. */
  readonly refusals?: RefusalThrottle
}) =>
  Effect.gen(function* () {
    const oauth = yield* OAuthServer
    const oauthRoutes = HttpRouter.provideService(OAuthHttp.router, OAuthServer, oauth)
    // One record of the cabinet's Connect links per relay: the cabinet adds to it, sign-out ends them.
    const links = yield* ConnectLinks.make
    const signIn = yield* SignInPages.routes(options.secure, options.sso, options.refusals).pipe(
      Effect.provideService(ConnectLinks.ConnectLinks, links)
    )
    const sso = options.sso
      ? yield* Effect.flatMap(Effect.serviceOption(Sso), (service) =>
          service._tag === "Some"
            ? Effect.provideService(SsoPages.routes(options), Sso, service.value)
            : Effect.succeed(HttpRouter.empty)
        )
      : HttpRouter.empty
    const device = yield* DevicePage.routes
    const cabinet = yield* Cabinet.routes.pipe(Effect.provideService(ConnectLinks.ConnectLinks, links))
    const workspaces = yield* WorkspacesApi.handler
    return HttpRouter.empty.pipe(
      HttpRouter.concat(oauthRoutes),
      HttpRouter.concat(signIn),
      HttpRouter.concat(device),
      HttpRouter.concat(cabinet),
      HttpRouter.concat(sso),
      HttpRouter.get(WorkspacesApi.path, workspaces),
      HttpRouter.get("/assets/cabinet.css", stylesheet)
    )
  })
