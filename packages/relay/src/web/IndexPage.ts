/**
 * `GET /` on the relay's HTTP port: a small page saying what this is (a cmdop relay), where the CLI and agents
 * connect (the gRPC address), what this port serves (share links, health, metrics), and, where the relay has
 * accounts, the way to sign in. Someone who opens the port in a browser learns what they reached instead of a 404.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { escapeHtml, page } from "./CabinetPage.js"

export const response = (options: { readonly grpcAddress: string; readonly accounts: boolean }) => {
  const grpc = escapeHtml(options.grpcAddress)
  const body = `<h1>cmdop relay</h1>
<p>This is the web port of a <strong>cmdop</strong> relay: remote machine access through one relay.</p>
${options.accounts ? '<p><a href="/signin">Sign in</a> to see your workspaces and machines.</p>\n' : ""}<ul>
  <li>Share links open here: <code>/s/&lt;token&gt;</code> is a browser terminal on the shared machine.</li>
  <li>The command line and agents connect over gRPC at <code>${grpc}</code>:
    <code>cmdop connect --list --server ${grpc}</code></li>
  <li>Health: <a href="/healthz">/healthz</a> · metrics: <a href="/metrics">/metrics</a></li>
</ul>`
  return options.accounts
    ? page("cmdop relay", body)
    : HttpServerResponse.text(
        `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>cmdop relay</title></head><body>\n${body}\n</body></html>\n`,
        { contentType: "text/html; charset=utf-8" }
      )
}
