/**
 * HTTP requests to the relay from a chosen loopback address (the relay limits refused credentials per source
 * address, so each attacker of the suite calls from its own): a WebSocket upgrade the relay is expected to refuse,
 * and a plain `GET`. Both resolve with the status, the body and `Retry-After`; an upgrade that succeeds fails.
 */
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import * as http from "node:http"

export interface Answer {
  readonly status: number
  readonly body: string
  readonly retryAfter: string | undefined
}

const request = (url: string, localAddress: string, headers: Readonly<Record<string, string>>) =>
  Effect.async<Answer, Error>((resume) => {
    // A fresh connection per request (no keep-alive agent): every request is a new stranger's socket.
    const req = http.request(url, { localAddress, agent: false, headers })
    req.on("upgrade", (_res, socket) => {
      socket.destroy()
      resume(Effect.fail(new Error(`${url} was upgraded`)))
    })
    req.on("response", (response) => {
      let body = ""
      response.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")))
      response.on("end", () =>
        resume(
          Effect.succeed({
            status: response.statusCode ?? 0,
            body,
            retryAfter: response.headers["retry-after"]
          })
        )
      )
    })
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end()
    return Effect.sync(() => req.destroy())
  })

/** A WebSocket upgrade of `url` (`http://<relay>/s/<token>/ws`) from `localAddress`. */
export const upgrade = (url: string, localAddress: string) =>
  request(url, localAddress, {
    connection: "Upgrade",
    upgrade: "websocket",
    "sec-websocket-version": "13",
    "sec-websocket-key": randomBytes(16).toString("base64")
  })

/** `GET url` from `localAddress`. */
export const get = (url: string, localAddress: string) => request(url, localAddress, {})
