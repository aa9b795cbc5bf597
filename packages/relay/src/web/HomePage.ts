/**
 * `/` on the relay's HTTP port: a small server-rendered page saying what this is (a cmdop relay, its version),
 * where the CLI and agents connect (the gRPC address, with a command line to try), what this port serves (share
 * links, health, metrics) and, when the relay has accounts, where to sign in (and how the host adds the first
 * person). Someone who opens the port in a browser learns what they reached instead of a 404. Same layout and
 * strict Content Security Policy as the account pages; no script.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { escapeHtml, page } from "./CabinetPage.js"

/** The relay's version (the `@cmdop/relay` package's; a test keeps them equal). */
export const RELAY_VERSION = "0.1.0"

/** The page; `accounts`: the relay serves sign-in and the cabinet. */
export const response = (options: {
  readonly accounts: boolean
  readonly grpcAddress: string
}): HttpServerResponse.HttpServerResponse => {
  const grpc = escapeHtml(options.grpcAddress)
  return page(
    "cmdop relay",
    `      <p>This is a <strong>cmdop relay</strong>, version ${escapeHtml(RELAY_VERSION)}: machines running the cmdop
      agent and the <code>cmdop</code> CLI connect to its gRPC port; share links open their browser terminal here.</p>
${
  options.accounts
    ? `      <p><a id="signin" href="/signin?next=%2Fcabinet">Sign in</a> to see your workspaces, machines, share links
      and keys. From a terminal: <code>cmdop login</code>.</p>
      <p>No account yet? An owner of your workspace adds you; the first one is added on the relay host with
      <code>cmdop relay user add you@example.com --workspace NAME --role owner</code>.</p>`
    : `      <p>This relay has no web sign-in; use its workspace API keys.</p>`
}
      <ul>
        <li>Share links open here: <code>/s/&lt;token&gt;</code> is a browser terminal on the shared machine.</li>
        <li>The command line and agents connect over gRPC at <code>${grpc}</code>:
          <code>cmdop connect --list --server ${grpc}</code></li>
        <li>Health: <a href="/healthz">/healthz</a> · metrics: <a href="/metrics">/metrics</a></li>
      </ul>`
  )
}
