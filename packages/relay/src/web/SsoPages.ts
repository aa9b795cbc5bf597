/**
 * Single sign-on in the browser (`relay serve --oidc-issuer …`): `GET /sso/start` begins the authorization code
 * flow with the provider (PKCE, state, nonce: `@cmdop/accounts/Sso`) and keeps the attempt server-side for 10
 * minutes, keyed by a random HttpOnly cookie; `GET /sso/callback` completes it (the attempt is used once) and
 * starts a web session like a password sign-in. Who may join is the owners' decision (invitations, domain rules).
 */
import { Sso, type SsoAttempt } from "@cmdop/accounts/Sso"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { cookieOptions, messagePage, newFormToken, seeOther, SESSION_COOKIE } from "./CabinetPage.js"

const ATTEMPT_COOKIE = "cmdop_sso"
const ATTEMPT_LIFETIME_MS = 10 * 60 * 1000
const MAX_ATTEMPTS = 10_000

/** The routes over the `Sso` in context; `publicUrl` is the relay's base URL (the callback's origin). */
export const routes = (options: { readonly secure: boolean; readonly publicUrl: () => string }) =>
  Effect.map(Sso, (sso) => {
    const attempts = new Map<string, { readonly attempt: SsoAttempt; readonly at: number }>()
    const start = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      for (const [key, value] of attempts) if (now - value.at > ATTEMPT_LIFETIME_MS) attempts.delete(key)
      if (attempts.size >= MAX_ATTEMPTS)
        return messagePage("Single sign-on", "too many sign-ins at once; try again", 503)
      const begun = yield* Effect.either(sso.begin)
      if (begun._tag === "Left") return messagePage("Single sign-on", begun.left.message, 502)
      const id = newFormToken()
      attempts.set(id, { attempt: begun.right.attempt, at: now })
      return HttpServerResponse.unsafeSetCookie(seeOther(begun.right.authorizationUrl.href), ATTEMPT_COOKIE, id, {
        ...cookieOptions(options.secure),
        maxAge: ATTEMPT_LIFETIME_MS / 1000
      })
    })
    const callback = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const id = request.cookies[ATTEMPT_COOKIE] ?? ""
      const kept = attempts.get(id)
      attempts.delete(id)
      const now = yield* Clock.currentTimeMillis
      if (kept === undefined || now - kept.at > ATTEMPT_LIFETIME_MS)
        return messagePage("Single sign-on", "this sign-in was not started here or took too long; start again", 400)
      const url = new URL(request.url, options.publicUrl())
      const signed = yield* Effect.either(sso.complete(url, kept.attempt))
      if (signed._tag === "Left") return messagePage("Single sign-on", signed.left.message, 403)
      return HttpServerResponse.unsafeSetCookie(
        seeOther("/cabinet"),
        SESSION_COOKIE,
        Redacted.value(signed.right.sessionId),
        { ...cookieOptions(options.secure), expires: new Date(signed.right.expiresAt) }
      )
    })
    return HttpRouter.empty.pipe(HttpRouter.get("/sso/start", start), HttpRouter.get("/sso/callback", callback))
  })
