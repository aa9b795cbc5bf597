/**
 * The browser terminal's WebSocket end to end: a real relay on 127.0.0.1 (gRPC + HTTP), a real agent daemon with
 * real PTYs, and the page's frames spoken by `TerminalClient`: the shell answers, a resize reaches the PTY
 * (`stty size`), a detached session stays listed and can be joined again with its screen, and the shell's exit
 * ends the page. The credential is a workspace key naming the machine (`?machine=`); share links and revocation
 * over the same socket are covered against the core in packages/relay/test/web/TerminalSocket.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import * as TerminalClient from "@cmdop/relay/web/TerminalClient"
import * as LoopbackRelay from "@cmdop/testkit/LoopbackRelay"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"

const decoder = new TextDecoder()

/** Reads until a control frame arrives: returns it and the output before it. */
const nextControl = (client: TerminalClient.TerminalClient) =>
  Effect.gen(function* () {
    let text = ""
    for (;;) {
      const item = yield* Queue.take(client.received)
      if (item._tag === "Output") text += decoder.decode(item.data)
      else return { frame: item.frame, text }
    }
  }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("no control frame in 10 s") }))

/** Reads output until it matches `pattern`; returns the match. */
const outputMatching = (client: TerminalClient.TerminalClient, pattern: RegExp) =>
  Effect.gen(function* () {
    let text = ""
    for (;;) {
      const match = pattern.exec(text)
      if (match) return match
      const item = yield* Queue.take(client.received)
      if (item._tag === "Output") text += decoder.decode(item.data)
      else return yield* Effect.fail(new Error(`control frame ${JSON.stringify(item.frame)} before ${pattern}`))
    }
  }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`no ${pattern} in 10 s`) }))

describe("TerminalSocket over a real relay and agent", () => {
  it.scopedLive("shell, resize, detach and rejoin, exit", () =>
    Effect.gen(function* () {
      const relay = yield* LoopbackRelay.make()
      const key = yield* relay.createWorkspace("team")
      yield* relay.startAgent(key, "pty-box")
      yield* relay.waitOnline(key, ["pty-box"])
      const admin = yield* relay.client(key)
      // The terminal opens only with a share link (a workspace key is refused there).
      const { token } = yield* admin.createShare("pty-box", 3600)
      const url = `${relay.httpAddress.replace("http:", "ws:")}/s/${token}/ws`

      const page = yield* TerminalClient.connect(url)
      yield* page.send({ type: "start", cols: 100, rows: 30 })
      const attached = yield* nextControl(page)
      assert.strictEqual(attached.frame.type, "attached")
      if (attached.frame.type !== "attached") return
      assert.strictEqual(attached.frame.machine.hostname, "pty-box")
      const sessionId = attached.frame.sessionId

      // Only the shell can turn this into 42: the echo of the typed line does not match.
      yield* page.type("echo hello-$((6*7))\r")
      yield* outputMatching(page, /hello-42/)
      yield* page.type("stty size\r")
      yield* outputMatching(page, /[\r\n]30 100\r\n/)
      yield* page.send({ type: "resize", cols: 120, rows: 40 })
      yield* page.type("stty size\r")
      yield* outputMatching(page, /[\r\n]40 120\r\n/)

      // Detach: the session stays on the machine, listed, with no viewer.
      yield* page.close
      let sessions = (yield* admin.listSessions("pty-box")).sessions
      for (let i = 0; i < 100 && sessions[0]?.viewers !== 0; i++) {
        yield* Effect.sleep("20 millis")
        sessions = (yield* admin.listSessions("pty-box")).sessions
      }
      assert.deepStrictEqual(
        sessions.map((s) => [s.sessionId, s.viewers, s.cols, s.rows]),
        [[sessionId, 0, 120, 40]]
      )

      // Rejoin (a page reload): the screen comes back, and the shell's exit ends the page.
      const reloaded = yield* TerminalClient.connect(url)
      yield* reloaded.send({ type: "start", cols: 120, rows: 40, sessionId })
      const rejoined = yield* nextControl(reloaded)
      assert.deepStrictEqual(rejoined.frame.type === "attached" && [rejoined.frame.sessionId, rejoined.frame.created], [
        sessionId,
        false
      ])
      yield* outputMatching(reloaded, /hello-42/)
      yield* reloaded.type("exit 7\r")
      const ended = yield* nextControl(reloaded)
      assert.deepStrictEqual(ended.frame.type === "ended" && [ended.frame.exitCode, ended.frame.message], [
        7,
        "the shell exited with code 7"
      ])
      assert.strictEqual((yield* reloaded.closed).code, 1000)
    })
  )
})
