/**
 * Everything accounts add to the relay's HTTP port, as one router: the OAuth endpoints of `@cmdop/accounts`
 * (metadata, device authorization, token, revocation), `/device`, the sign-in pages, the web cabinet, its
 * stylesheet and `/apix/machines/workspaces/`.
 */
import * as OAuthHttp from "@cmdop/accounts/OAuthHttp"
import { OAuthServer } from "@cmdop/accounts/OAuthServer"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Effect from "effect/Effect"
import * as Cabinet from "./Cabinet.js"
import { stylesheet } from "./CabinetPage.js"
import * as DevicePage from "./DevicePage.js"
import * as SignInPages from "./SignInPages.js"
import * as WorkspacesApi from "./WorkspacesApi.js"

/** The router; `secure`: the relay's public URL is https (session cookies get `Secure`). */
export const make = (options: { readonly secure: boolean }) =>
  Effect.gen(function* () {
    const oauth = yield* OAuthServer
    const oauthRoutes = HttpRouter.provideService(OAuthHttp.router, OAuthServer, oauth)
    const signIn = yield* SignInPages.routes(options.secure)
    const device = yield* DevicePage.routes
    const cabinet = yield* Cabinet.routes
    const workspaces = yield* WorkspacesApi.handler
    return HttpRouter.empty.pipe(
      HttpRouter.concat(oauthRoutes),
      HttpRouter.concat(signIn),
      HttpRouter.concat(device),
      HttpRouter.concat(cabinet),
      HttpRouter.get(WorkspacesApi.path, workspaces),
      HttpRouter.get("/assets/cabinet.css", stylesheet)
    )
  })
