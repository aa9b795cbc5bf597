/**
 * The page a guest gets at `/s/<token>`: a header naming the machine and the link's expiry, a `#status` banner,
 * and the browser terminal (`packages/relay/web`, bundled into `assets.generated.ts` by scripts/build-web.mjs),
 * whose script and stylesheet the relay serves itself at `/assets/terminal.js` and `/assets/terminal.css`.
 * Every URL in the page is relative, so a relay behind a path prefix works unchanged.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { gzipSync } from "node:zlib"
import * as Assets from "./assets.generated.js"

export interface PageOptions {
  /** The share token of the page's URL; the terminal's socket is `<token>/ws` next to it. */
  readonly token: string
  readonly machineHostname: string
  /** When the link stops working (ms since the epoch); absent: never. */
  readonly expiresAt?: number | undefined
  /** The relay's gRPC address, for the "use it from a terminal" hint. */
  readonly cliServer?: string | undefined
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c as "&"])

const utc = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z")

/** The whole HTML page, everything in it escaped. */
export const render = (options: PageOptions): string => {
  const host = escapeHtml(options.machineHostname)
  const expiry =
    options.expiresAt === undefined
      ? "Link never expires"
      : `Link expires <time datetime="${utc(options.expiresAt)}">${utc(options.expiresAt).replace("T", " ").replace("Z", " UTC")}</time>`
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="referrer" content="no-referrer" />
    <title>${host} — cmdop</title>
    <link rel="stylesheet" href="../assets/terminal.css?v=${Assets.version}" />
    <script src="../assets/terminal.js?v=${Assets.version}" defer></script>
  </head>
  <body data-state="connecting">
    <header>
      <span class="brand">cmdop</span>
      <span class="machine">${host}</span>
      <span class="expiry">${expiry}</span>
    </header>${
      options.cliServer === undefined
        ? ""
        : `
    <details class="cli"><summary>Use this link from a terminal</summary><code>cmdop connect --api-key &lt;the token after /s/ in this link&gt; --server ${escapeHtml(options.cliServer)} exec ${host} -- uptime</code></details>`
    }
    <div id="status" role="status" aria-live="polite" data-state="connecting">
      <span id="status-text">Connecting…</span>
      <button id="reconnect" type="button" hidden>Reconnect</button>
    </div>
    <main id="terminal" data-socket="./${escapeHtml(encodeURIComponent(options.token))}/ws"></main>
    <noscript>This terminal needs JavaScript.</noscript>
  </body>
</html>
`
}

/**
 * Headers for the page: the token is in its URL, so it must not leak through referrers, caches or frames.
 * (xterm.js sets inline styles, hence `style-src 'unsafe-inline'`.)
 */
export const pageHeaders: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; " +
    "img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

/** The page as a response, with `pageHeaders`. */
export const response = (options: PageOptions): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.html(render(options)).pipe(HttpServerResponse.setHeaders(pageHeaders))

interface Asset {
  readonly contentType: string
  readonly plain: Uint8Array
  gzip?: Uint8Array
}

const asset = (contentType: string, text: string): Asset => ({ contentType, plain: Buffer.from(text, "utf8") })
const scriptAsset = asset("text/javascript; charset=utf-8", Assets.script)
const styleAsset = asset("text/css; charset=utf-8", Assets.style)

/**
 * Serves an asset: immutable for a year when asked for the current `?v=` (the page always does), revalidated
 * otherwise; gzip when the browser takes it.
 */
const serveAsset = (a: Asset) =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const etag = `"${Assets.version}"`
    const current = new URL(request.url, "http://relay").searchParams.get("v") === Assets.version
    const headers = {
      etag,
      vary: "accept-encoding",
      "x-content-type-options": "nosniff",
      "cache-control": current ? "public, max-age=31536000, immutable" : "no-cache"
    }
    if (request.headers["if-none-match"] === etag) return HttpServerResponse.empty({ status: 304, headers })
    if (/\bgzip\b/.test(request.headers["accept-encoding"] ?? "")) {
      a.gzip ??= gzipSync(a.plain, { level: 9 })
      return HttpServerResponse.uint8Array(a.gzip, {
        contentType: a.contentType,
        headers: { ...headers, "content-encoding": "gzip" }
      })
    }
    return HttpServerResponse.uint8Array(a.plain, { contentType: a.contentType, headers })
  })

/** `GET /assets/terminal.js` */
export const script = serveAsset(scriptAsset)

/** `GET /assets/terminal.css` */
export const stylesheet = serveAsset(styleAsset)
