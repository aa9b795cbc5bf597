/**
 * Signing in to the relay in a browser: `/signin` (email and password), `/signin/<token>` (a one-time link from
 * `relay user add`, where a person sets their password) and `POST /signout`. A successful sign-in sets the
 * session cookie (HttpOnly, SameSite=Lax, Secure under TLS); the session lives server-side, so sign-out ends it
 * at once. Forms shown before sign-in carry a double-submit anti-forgery token; sign-out needs the session's.
 */
import { Accounts, type SignedIn } from "@cmdop/accounts/Accounts"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { ConnectLinks } from "./ConnectLinks.js"
import {
  cookieOptions,
  escapeHtml,
  FORM_COOKIE,
  formFields,
  messagePage,
  newFormToken,
  page,
  safeNext,
  seeOther,
  SESSION_COOKIE,
  sessionCookie
} from "./CabinetPage.js"

/** A page with a pre-sign-in form: a fresh anti-forgery value in the cookie and in the form. */
const withFormToken = (render: (token: string) => HttpServerResponse.HttpServerResponse, secure: boolean) => {
  const token = newFormToken()
  return HttpServerResponse.unsafeSetCookie(render(token), FORM_COOKIE, token, cookieOptions(secure))
}

/** Whether a pre-sign-in form came with the cookie's anti-forgery value. */
const formTokenValid = (fields: Record<string, string>) =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const cookie = request.cookies[FORM_COOKIE]
    return cookie !== undefined && cookie.length > 0 && fields.csrf === cookie
  })

const signInForm = (token: string, next: string, sso: boolean, error?: string) =>
  page(
    "Sign in",
    `${error === undefined ? "" : `      <p class="message">${escapeHtml(error)}</p>\n`}      <form method="post" action="/signin">
        <input type="hidden" name="csrf" value="${escapeHtml(token)}">
        <input type="hidden" name="next" value="${escapeHtml(next)}">
        <label>Email <input type="email" name="email" autocomplete="username" required></label>
        <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
        <button type="submit">Sign in</button>
      </form>${sso ? `\n      <p><a href="/sso/start">Sign in with single sign-on</a></p>` : ""}`,
    error === undefined ? 200 : 401
  )

const setPasswordForm = (linkToken: string, token: string, error?: string) =>
  page(
    "Set your password",
    `${error === undefined ? "" : `      <p class="message">${escapeHtml(error)}</p>\n`}      <form method="post" action="/signin/${escapeHtml(encodeURIComponent(linkToken))}">
        <input type="hidden" name="csrf" value="${escapeHtml(token)}">
        <label>New password <input type="password" name="password" autocomplete="new-password" minlength="12" required></label>
        <button type="submit">Set password and sign in</button>
      </form>`,
    error === undefined ? 200 : 400
  )

/** Signed in: the session cookie, then on to `next`. */
const signedIn = (signed: SignedIn, next: string, secure: boolean) =>
  HttpServerResponse.unsafeSetCookie(seeOther(next), SESSION_COOKIE, Redacted.value(signed.sessionId), {
    ...cookieOptions(secure),
    expires: new Date(signed.expiresAt)
  })

const forged = messagePage("Sign in", "the form was stale or did not come from this site; reload the page", 403)

/** The sign-in routes over the `Accounts` in context; `secure`: the relay serves TLS (cookies get `Secure`). */
export const routes = (secure: boolean, sso = false) =>
  Effect.map(Effect.all([Accounts, ConnectLinks]), ([accounts, links]) =>
    HttpRouter.empty.pipe(
      HttpRouter.get(
        "/signin",
        Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
          const next = safeNext(new URL(request.url, "http://relay.invalid").searchParams.get("next") ?? undefined)
          return withFormToken((token) => signInForm(token, next, sso), secure)
        })
      ),
      HttpRouter.post(
        "/signin",
        Effect.gen(function* () {
          const fields = yield* formFields
          if (!(yield* formTokenValid(fields))) return forged
          const next = safeNext(fields.next)
          const result = yield* Effect.either(accounts.signIn(fields.email ?? "", Redacted.make(fields.password ?? "")))
          if (result._tag === "Left") return withFormToken((t) => signInForm(t, next, sso, result.left.message), secure)
          return signedIn(result.right, next, secure)
        })
      ),
      HttpRouter.get(
        "/signin/:token",
        Effect.map(HttpRouter.params, ({ token }) => withFormToken((t) => setPasswordForm(token ?? "", t), secure))
      ),
      HttpRouter.post(
        "/signin/:token",
        Effect.gen(function* () {
          const { token } = yield* HttpRouter.params
          const fields = yield* formFields
          if (!(yield* formTokenValid(fields))) return forged
          const result = yield* Effect.either(
            accounts.redeemSignInLink(Redacted.make(token ?? ""), Redacted.make(fields.password ?? ""))
          )
          if (result._tag === "Left")
            return withFormToken((t) => setPasswordForm(token ?? "", t, result.left.message), secure)
          return signedIn(result.right, "/cabinet", secure)
        })
      ),
      HttpRouter.post(
        "/signout",
        Effect.gen(function* () {
          const session = yield* sessionCookie
          const fields = yield* formFields
          if (session === undefined) return seeOther("/signin")
          const csrf = yield* Effect.either(accounts.checkCsrf(session, fields.csrf))
          if (csrf._tag === "Left") return messagePage("Sign out", csrf.left.message, 403)
          // The browser-terminal links this session opened from the cabinet end with it.
          yield* links.signedOut(session)
          const out = yield* Effect.either(accounts.signOut(session))
          if (out._tag === "Left") return messagePage("Sign out", out.left.message, 500)
          return HttpServerResponse.unsafeSetCookie(seeOther("/signin"), SESSION_COOKIE, "", {
            ...cookieOptions(secure),
            maxAge: 0
          })
        })
      )
    )
  )
