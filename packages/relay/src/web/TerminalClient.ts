/**
 * A Node client of the browser terminal's WebSocket (`TerminalSocket`), for tests and tools: it speaks the same
 * frames as the page and hands back what the relay sends, in order.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as Socket from "@effect/platform/Socket"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import * as http from "node:http"
import type { ClientFrame, ServerFrame } from "./TerminalSocket.js"

/** What arrived from the relay. */
export type Received =
  { readonly _tag: "Output"; readonly data: Uint8Array } | { readonly _tag: "Control"; readonly frame: ServerFrame }

/** How the socket closed: the close code and reason (code -1: it failed without a close frame). */
export interface Closed {
  readonly code: number
  readonly reason: string
}

export interface TerminalClient {
  /** Everything received, in order; ends (shuts down) when the socket closes. */
  readonly received: Queue.Dequeue<Received>
  readonly send: (frame: ClientFrame) => Effect.Effect<void>
  /** Sends raw keystrokes as a binary frame. */
  readonly type: (text: string | Uint8Array) => Effect.Effect<void>
  /** Closes the socket from this side (code 1000). */
  readonly close: Effect.Effect<void>
  /** Waits for the socket to close. */
  readonly closed: Effect.Effect<Closed>
}

/** Connects to `url` (`ws://<relay>/s/<token>/ws`) for the life of the scope. */
export const connect = (url: string): Effect.Effect<TerminalClient, never, Scope.Scope> =>
  Effect.gen(function* () {
    const socket = yield* Socket.makeWebSocket(url, { closeCodeIsError: () => true })
    const received = yield* Queue.unbounded<Received>()
    const run = yield* socket
      .runRaw((data: string | Uint8Array | ArrayBuffer) => {
        Queue.unsafeOffer(
          received,
          typeof data === "string"
            ? { _tag: "Control", frame: JSON.parse(data) as ServerFrame }
            : { _tag: "Output", data: data instanceof Uint8Array ? data : new Uint8Array(data) }
        )
      })
      .pipe(
        Effect.catchAll((e) =>
          Effect.succeed<Closed>(
            e._tag === "SocketError" && e.reason === "Close"
              ? { code: e.code, reason: e.closeReason ?? "" }
              : { code: -1, reason: e.message }
          )
        ),
        Effect.map((closed): Closed => closed ?? { code: 1000, reason: "" }),
        Effect.ensuring(Queue.shutdown(received)),
        Effect.forkScoped
      )
    const write = yield* socket.writer
    const send = (chunk: string | Uint8Array | Socket.CloseEvent) =>
      Effect.raceFirst(Effect.ignore(write(chunk)), Effect.asVoid(Fiber.await(run)))
    return {
      received,
      send: (frame) => send(JSON.stringify(frame)),
      type: (text) => send(typeof text === "string" ? new TextEncoder().encode(text) : text),
      close: send(new Socket.CloseEvent(1000, "bye")),
      closed: Fiber.join(run)
    } satisfies TerminalClient
  }).pipe(Effect.provide(NodeSocket.layerWebSocketConstructor))

/**
 * Asks `url` (`http://<relay>/s/<token>/ws`) for a WebSocket upgrade that the relay is expected to refuse: the
 * HTTP status and body it answers with. Fails if the relay upgrades instead.
 */
export const upgradeRefusal = (url: string, headers: Readonly<Record<string, string>> = {}) =>
  Effect.async<{ readonly status: number; readonly body: string }, Error>((resume) => {
    const request = http.request(url, {
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": randomBytes(16).toString("base64"),
        ...headers
      }
    })
    request.on("upgrade", (_res, socket) => {
      socket.destroy()
      resume(Effect.fail(new Error(`${url} was upgraded`)))
    })
    request.on("response", (response) => {
      let body = ""
      response.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body })))
    })
    request.on("error", (e) => resume(Effect.fail(e)))
    request.end()
    return Effect.sync(() => request.destroy())
  })
