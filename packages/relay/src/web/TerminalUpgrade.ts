/**
 * The gate in front of the browser terminal's WebSocket (`/s/<token>/ws`): the relay takes over its HTTP server's
 * upgrades and checks everything it can before a WebSocket exists — the path, the page's `Origin`, that the token
 * is a share link (workspace keys are refused here), the link itself, and the link's stream slot — answering a
 * refusal with a plain HTTP status and one line of text. Refused tokens count against their source's budget of
 * refusals, shared with gRPC (`refusalThrottle.ts`): past it, the source's upgrades are answered 429 unread. Only then does it upgrade, with frames capped at
 * `MAX_WS_FRAME`, and serve the terminal (`TerminalSocket.serve`).
 *
 * `Origin`: a browser always sends it; it must be the relay's public URL's origin or the origin of the `Host` the
 * request came to, so another site's page cannot open a guest's terminal with the guest's link. Clients that are
 * not browsers send none and are not checked (they hold the token anyway).
 */
import * as Socket from "@effect/platform/Socket"
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as FiberSet from "effect/FiberSet"
import * as Scope from "effect/Scope"
import type * as http from "node:http"
import type * as net from "node:net"
import { WebSocketServer } from "ws"
import { looksLikeShareToken } from "../Authenticator.js"
import * as Admission from "../internal/admission.js"
import * as Limits from "../internal/limits.js"
import { sourceOfAddress } from "../internal/refusalThrottle.js"
import type { RelayCore } from "../RelayCore.js"
import * as TerminalSocket from "./TerminalSocket.js"

const PATH = /^\/s\/([^/?#]+)\/ws(?:\?.*)?$/

export interface Options {
  /** The relay's public base URL (its origin is accepted in `Origin`). */
  readonly publicUrl: () => string
  /** Shared with the gRPC services, so a link's browser and CLI streams count against one cap. Default: its own. */
  readonly admission?: Admission.Admission
}

interface Refusal {
  readonly status: number
  readonly message: string
}

const STATUS_TEXT: Record<number, string> = {
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable"
}

/** Answers the upgrade request with a plain HTTP response and closes the connection. */
const refuse = (socket: net.Socket, { message, status }: Refusal) => {
  const body = `${message}\n`
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  )
}

const refusalOf = (error: RelayCallError): Refusal => {
  switch (error._tag) {
    case "AccessError":
      return { status: error.reason === "Unauthenticated" ? 401 : 403, message: error.message }
    case "MachineError":
      return { status: 503, message: error.message }
    case "RelayError":
      return error.reason === "ResourceExhausted"
        ? { status: 429, message: error.detail }
        : error.reason === "Internal"
          ? { status: 500, message: "the relay failed; try again later" }
          : { status: 503, message: error.detail }
  }
}

const originOf = (url: string): string | undefined => {
  try {
    return new URL(url).origin
  } catch {
    return undefined
  }
}

/** Whether a browser's `Origin` is the relay's own (public URL, or the host the request came to). */
export const originAllowed = (origin: string | undefined, host: string | undefined, publicUrl: string): boolean =>
  origin === undefined ||
  origin === originOf(publicUrl) ||
  (host !== undefined && (origin === `http://${host}` || origin === `https://${host}`))

/** A path segment, percent-decoded; `undefined` when its escapes are broken (`decodeURIComponent` would throw). */
const safeDecode = (segment: string): string | undefined => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

/** The checks before the upgrade: the token to serve, or why not. */
const admit = (
  core: RelayCore["Type"],
  options: Options & { readonly admission: Admission.Admission },
  request: http.IncomingMessage,
  scope: Scope.Scope
) =>
  Effect.gen(function* () {
    const match = PATH.exec(request.url ?? "")
    if (!match) return yield* Effect.fail<Refusal>({ status: 404, message: "no WebSocket here" })
    // A source that has spent its budget of refused credentials is answered 429 before anything else is read.
    const source = sourceOfAddress(request.socket.remoteAddress)
    yield* Admission.checkSource(options.admission, core.server, source).pipe(Effect.mapError(refusalOf))
    if (!originAllowed(request.headers.origin, request.headers.host, options.publicUrl()))
      return yield* Effect.fail<Refusal>({ status: 403, message: "this page may not open the relay's terminal" })
    const token = safeDecode(match[1]!)
    if (token === undefined || !looksLikeShareToken(token)) {
      yield* Admission.noteRefused(options.admission, source)
      return yield* Effect.fail<Refusal>({
        status: 401,
        message: "only a share link opens the browser terminal (mint one with: cmdop connect share <machine>)"
      })
    }
    const caller = yield* Admission.authenticateFrom(
      options.admission,
      core.server,
      source,
      core.authenticate(Redacted.make(token))
    ).pipe(Effect.mapError(refusalOf))
    yield* Admission.holdStream(options.admission, core.server, caller).pipe(
      Effect.mapError(refusalOf),
      Scope.extend(scope)
    )
    return token
  })

/**
 * Takes over the `upgrade` event of `server` (after the HTTP app is installed on it): `/s/<token>/ws` goes through
 * the gate; any other upgrade is answered 404. Sockets live until the terminal ends or the relay's scope closes.
 */
export const install = (core: RelayCore["Type"], server: http.Server, options: Options) =>
  Effect.gen(function* () {
    // Each connection runs on a fiber of the relay's scope: closing the relay ends every terminal.
    const run = yield* FiberSet.makeRuntime<never>()
    const admission = options.admission ?? Admission.make()
    const wss = new WebSocketServer({ noServer: true, maxPayload: Limits.MAX_WS_FRAME })
    yield* Effect.addFinalizer(() => Effect.async<void>((resume) => wss.close(() => resume(Effect.void))))
    const onUpgrade = (request: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      socket.on("error", () => socket.destroy())
      const connection = Effect.gen(function* () {
        const scope = yield* Scope.make()
        const admitted = yield* Effect.either(admit(core, { ...options, admission }, request, scope))
        if (admitted._tag === "Left") {
          refuse(socket, admitted.left)
          return yield* Scope.close(scope, Exit.void)
        }
        const ws = yield* Effect.async<WebSocket>((resume) =>
          wss.handleUpgrade(request, socket, head, (ws) => resume(Effect.succeed(ws as unknown as WebSocket)))
        )
        const terminal = yield* Socket.fromWebSocket(
          Effect.acquireRelease(Effect.succeed(ws), (ws) => Effect.sync(() => ws.close()))
        )
        yield* TerminalSocket.serve(core, terminal, { token: Redacted.make(admitted.right) }).pipe(
          Effect.ensuring(Scope.close(scope, Exit.void))
        )
      })
      run(connection)
    }
    server.removeAllListeners("upgrade")
    server.on("upgrade", onUpgrade)
    yield* Effect.addFinalizer(() => Effect.sync(() => server.off("upgrade", onUpgrade)))
  })
