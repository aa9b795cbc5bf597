/**
 * The page a guest gets at `GET <relay>/s/<token>`: which machine the link reaches, until when, and how to use
 * the token from the CLI. An invalid link gets a plain error page (never a stack trace) with a status that says
 * what happened:
 *
 *  - 200 the link is valid;
 *  - 401 not a share token, not signed by this relay (or altered), or no such link (`WWW-Authenticate: Bearer`);
 *  - 410 the link is over for good: expired, revoked, the workspace key was rotated, or its signing key retired;
 *  - 404 the link's machine is no longer in its workspace;
 *  - 503 the relay's store failed (try again);
 *  - 429 the caller's address has had too many links refused (`throttledPage`).
 *
 * Everything printed is HTML-escaped; the only place the token appears is the CLI hint of a valid link. The page
 * has no external assets and a CSP that allows none. (A later issue replaces the body with a browser terminal;
 * this module is the one to change.)
 */
import { formatInstant, type ShareError } from "@cmdop/domain/ShareError"
import { type ShareGrant, ShareService } from "@cmdop/domain/ShareService"
import * as Effect from "effect/Effect"

export interface Page {
  readonly status: number
  readonly html: string
  /** Extra response headers (`WWW-Authenticate` on 401). */
  readonly headers: Readonly<Record<string, string>>
}

/** The HTTP status of a share-link failure on the page. */
export const statusOf = (reason: ShareError["reason"]): number => {
  switch (reason) {
    case "Malformed":
    case "BadSignature":
    case "NotFound":
      return 401
    case "Expired":
    case "Revoked":
    case "KeyRotated":
    case "SigningKeyRetired":
      return 410
    case "MachineGone":
      return 404
    case "NotAllowed":
      return 403
    case "InvalidTtl":
      return 400
    case "Unavailable":
      return 503
  }
}

/** Headers every page carries: the URL holds a secret, so no caching, no referrer, nothing loaded from elsewhere. */
export const headers: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

const entities: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }
/** Text safe to place in HTML content and quoted attributes. */
export const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => entities[c]!)

const style = `body{font:15px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code,pre{font-family:ui-monospace,monospace;background:#f3f3f3;border-radius:4px}
pre{padding:.75rem;white-space:pre-wrap;word-break:break-all}.muted{color:#666}`

const document = (title: string, body: string) =>
  `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${escape(title)}</title><style>${style}</style></head>
<body>${body}</body></html>
`

/** The page of a valid link. `server` is the relay's gRPC address for the CLI hint. */
export const validPage = (grant: ShareGrant, token: string, server: string): string => {
  const host = escape(grant.machineHostname)
  const expiry =
    grant.expiresAt === undefined
      ? "This link never expires."
      : `This link expires at <strong>${escape(formatInstant(grant.expiresAt))}</strong>.`
  const command = `cmdop connect --api-key ${token} --server ${server} exec ${grant.machineHostname} -- uptime`
  return document(
    `Share link: ${grant.machineHostname}`,
    `<h1>Shared machine: <code>${host}</code></h1>
<p>This link reaches one machine, <strong>${host}</strong>, of workspace <strong>${escape(grant.workspaceName)}</strong>,
shared by <strong>${escape(grant.creator)}</strong>. ${expiry}</p>
<p>Run a command on it with the cmdop CLI (no account needed):</p>
<pre>${escape(command)}</pre>
<p class="muted">Treat this link like a password: anyone who has it can reach the machine until it expires.</p>`
  )
}

/** The page of a link that does not (or no longer) work. */
export const errorPage = (error: ShareError): string =>
  document(
    "Share link unavailable",
    `<h1>This share link cannot be used</h1>
<p>${escape(error.message)}.</p>
<p class="muted">Ask whoever shared it for a new link.</p>`
  )

/** The page of a refused link: its status, the plain error page, and the headers (`WWW-Authenticate` on 401). */
export const failurePage = (error: ShareError): Page => {
  const status = statusOf(error.reason)
  return {
    status,
    html: errorPage(error),
    headers: status === 401 ? { ...headers, "www-authenticate": 'Bearer realm="cmdop share link"' } : headers
  }
}

/**
 * The page of a source that has spent its budget of refused links (`refusalThrottle.ts`): 429, with `Retry-After`
 * when `detail` names the wait ("… for the next N s …").
 */
export const throttledPage = (detail: string): Page => {
  const wait = /next (\d+) s/.exec(detail)?.[1]
  return {
    status: 429,
    html: document(
      "Too many refused links",
      `<h1>Too many refused share links</h1>
<p>${escape(detail)}.</p>
<p class="muted">Check the link you were given, wait a moment, then try again.</p>`
    ),
    headers: wait === undefined ? headers : { ...headers, "retry-after": wait }
  }
}

/**
 * Validates `token` and renders its page. Never fails; `server` is the relay's gRPC address for the CLI hint.
 * (A route that has validated already should call `validPage`/`failurePage` instead: each `validate` of a
 * refused link records a `denied` event.)
 */
export const render = (token: string, server: string): Effect.Effect<Page, never, ShareService> =>
  Effect.flatMap(ShareService, (shares) => shares.validate(token)).pipe(
    Effect.match({
      onSuccess: (grant) => ({ status: 200, html: validPage(grant, token, server), headers }),
      onFailure: failurePage
    }),
    // Last line of defence: whatever happens, the guest gets a plain page, not a stack trace.
    Effect.catchAllDefect((defect) =>
      Effect.as(Effect.logError("share page failed", defect), {
        status: 503,
        html: document("Share link unavailable", "<h1>The relay could not check this link</h1><p>Try again.</p>"),
        headers
      })
    )
  )
