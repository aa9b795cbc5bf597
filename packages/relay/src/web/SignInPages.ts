/**
 * Signing in to the relay in a browser: `/signin` (email and password), `/signin/<token>` (a one-time link from
 * `relay user add`, where a person sets their password) and `POST /signout`. A successful sign-in sets the
 * session cookie (HttpOnly, SameSite=Lax, Secure under TLS); the session lives server-side, so sign-out ends it
 * at once. Forms shown before sign-in carry a double-submit anti-forgery token; sign-out needs the session's.
 *
 * A wrong password, and a sign-in link that does not work, take one from the source address's budget of refused
 * credentials, the one gRPC and the share pages use (`refusalThrottle.ts`): once it is spent, the address's
 * sign-ins are answered 429 before the password is hashed, so nobody guesses passwords at the speed of Argon2id.
 */
import { Accounts, type SignedIn } from "@cmdop/accounts/Accounts"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { RefusalThrottle, sourceOfAddress } from "../internal/refusalThrottle.js"
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

/**
 * The source address of the request, and the time it may be heard again (`undefined`: now) by `refusals`.
 */
const sourceOf = (refusals: RefusalThrottle) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const source = sourceOfAddress(Option.getOrUndefined(request.remoteAddress))
    const now = yield* Clock.currentTimeMillis
    return { source, blockedFor: refusals.blockedFor(source, now) }
  })

const throttled = (source: string, ms: number) =>
  HttpServerResponse.setHeader(
    messagePage(
      "Sign in",
      `too many failed sign-ins from ${source}; the relay ignores its sign-ins for the next ${Math.ceil(ms / 1000)} s`,
      429
    ),
    "retry-after",
    String(Math.ceil(ms / 1000))
  )

const noteRefused = (refusals: RefusalThrottle, source: string) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => refusals.refused(source, now)))

/**
 * The sign-in routes over the `Accounts` in context; `secure`: the relay serves TLS (cookies get `Secure`);
 * `refusals`: the relay's per-source budget of refused credentials (its own when not given).
 */
export const routes = (secure: boolean, sso = false, refusals: RefusalThrottle = new RefusalThrottle()) =>
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
          const { blockedFor, source } = yield* sourceOf(refusals)
          if (blockedFor !== undefined) return throttled(source, blockedFor)
          const next = safeNext(fields.next)
          const result = yield* Effect.either(accounts.signIn(fields.email ?? "", Redacted.make(fields.password ?? "")))
          if (result._tag === "Left" && result.left._tag === "AccountError") yield* noteRefused(refusals, source)
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
          const { blockedFor, source } = yield* sourceOf(refusals)
          if (blockedFor !== undefined) return throttled(source, blockedFor)
          const result = yield* Effect.either(
            accounts.redeemSignInLink(Redacted.make(token ?? ""), Redacted.make(fields.password ?? ""))
          )
          // A link that does not work is a refused credential; a weak password is the person's typing.
          if (result._tag === "Left" && !(result.left._tag === "AccountError" && result.left.reason === "WeakPassword"))
            yield* noteRefused(refusals, source)
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
