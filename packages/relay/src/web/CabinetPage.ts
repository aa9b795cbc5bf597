/**
 * How the relay's account pages look and travel: one plain HTML layout (no script, no CDN, a strict Content
 * Security Policy), HTML escaping, the session and anti-forgery cookies, and reading a form's fields. The pages
 * themselves (`SignInPages.ts`, `DevicePage.ts`, `Cabinet.ts`) build on these.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"

/** The HttpOnly cookie holding a web session's id (looked up server-side on every request). */
export const SESSION_COOKIE = "cmdop_session"
/** The anti-forgery cookie of pages shown before sign-in (double submit: the form carries the same value). */
export const FORM_COOKIE = "cmdop_form"

/** Headers of every account page: nothing runs, nothing is framed, forms post only to this relay. */
export const pageHeaders: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-security-policy":
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
}

export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c)

/** A page: `body` is HTML the caller has escaped. */
export const page = (title: string, body: string, status = 200): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(
    `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>${escapeHtml(title)} · cmdop</title>
    <link rel="stylesheet" href="/assets/cabinet.css">
  </head>
  <body>
    <header><strong>cmdop</strong> relay</header>
    <main>
      <h1>${escapeHtml(title)}</h1>
${body}
    </main>
  </body>
</html>
`,
    { status, contentType: "text/html; charset=utf-8", headers: pageHeaders }
  )

/** A one-line message page (errors a person can act on). */
export const messagePage = (title: string, message: string, status: number) =>
  page(title, `      <p class="message">${escapeHtml(message)}</p>\n      <p><a href="/cabinet">Back</a></p>`, status)

/** The cabinet's stylesheet (served from this relay, so the CSP needs no inline style). */
export const stylesheet = HttpServerResponse.text(
  `body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6rem 1rem}main{max-width:60rem;margin:1rem auto;padding:0 1rem}
form.inline{display:inline}label{display:block;margin:.5rem 0}input,select,button{font:inherit;padding:.3rem .5rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}
.message{padding:.6rem;background:#fff3cd}.secret{font-family:monospace;background:#e8f5e9;padding:.4rem}
`,
  { contentType: "text/css; charset=utf-8", headers: { "cache-control": "public, max-age=300" } }
)

/** The cookie options: HttpOnly, SameSite=Lax, path `/`, Secure when the relay serves TLS. */
export const cookieOptions = (secure: boolean) => ({
  httpOnly: true,
  sameSite: "lax" as const,
  path: "/",
  secure
})

/** The session id the browser sent, if any. */
export const sessionCookie = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
  const value = request.cookies[SESSION_COOKIE]
  return value === undefined || value === "" ? undefined : Redacted.make(value)
})

/** A fresh anti-forgery value for a page shown before sign-in. */
export const newFormToken = (): string => randomBytes(24).toString("base64url")

/** The fields of a posted form (`application/x-www-form-urlencoded`); the last value of a repeated field wins. */
export const formFields = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const params = yield* Effect.orElseSucceed(
    request.urlParamsBody,
    () => [] as ReadonlyArray<readonly [string, string]>
  )
  const out: Record<string, string> = {}
  for (const [key, value] of params) out[key] = value
  return out
})

/** A redirect (303, so the browser follows with GET). */
export const seeOther = (location: string) =>
  HttpServerResponse.empty({ status: 303, headers: { location, "cache-control": "no-store" } })

/**
 * A `next` target that stays on this site (a path, never `//host` or a full URL). Control characters and spaces
 * are refused too: browsers drop tabs and newlines from a URL (`/<TAB>/evil.example` is `//evil.example`), and
 * a redirect header cannot carry them.
 */
export const safeNext = (next: string | undefined): string =>
  next !== undefined &&
  next.startsWith("/") &&
  !next.startsWith("//") &&
  !next.startsWith("/\\") &&
  !/[\u0000-\u0020\u007f-\u009f]/.test(next)
    ? next
    : "/cabinet"
