/**
 * The browser terminal's WebSocket over a real HTTP server on 127.0.0.1, against the real relay core with a
 * hand-driven agent that echoes PTY input as output: the frame protocol, resizes reaching the machine, detach
 * leaving the session running, a session's end and a revoked link closing the page, and bad tokens refused.
 * (The same protocol against a real agent's shell: packages/testkit/test/TerminalSocket.test.ts.)
 */
import { assert, describe, it } from "@effect/vitest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import type { AgentMessage, RelayMessage } from "@cmdop/domain/AgentLink"
import type { PtySession } from "@cmdop/domain/RelayClient"
import * as RelayCore from "@cmdop/relay/RelayCore"
import * as RelayStore from "@cmdop/relay/RelayStore"
import * as ShareServiceLive from "@cmdop/relay/share/ShareServiceLive"
import * as TerminalClient from "@cmdop/relay/web/TerminalClient"
import * as TerminalSocket from "@cmdop/relay/web/TerminalSocket"
import * as TerminalUpgrade from "@cmdop/relay/web/TerminalUpgrade"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import * as http from "node:http"
import { agentIdentity } from "../agentDouble.js"

const decoder = new TextDecoder()

/** A relay core with only the terminal socket (and its gate) on an ephemeral HTTP port, and a workspace key. */
const setup = Effect.gen(function* () {
  const context = yield* Layer.build(
    RelayCore.layer({ server: "test" }).pipe(
      Layer.provideMerge(ShareServiceLive.layer),
      Layer.provideMerge(RelayStore.layerMemory)
    )
  )
  const core = Context.get(context, RelayCore.RelayCore)
  const store = Context.get(context, RelayStore.RelayStore)
  const key = Redacted.value((yield* store.createWorkspace(WorkspaceName.make("w"))).apiKey)
  const router = HttpRouter.empty.pipe(HttpRouter.get("/s/:token/ws", TerminalSocket.handler))
  const httpServer = http.createServer()
  const server = yield* Layer.build(
    HttpServer.serve(HttpRouter.withRouterConfig(router, { maxParamLength: 4096 })).pipe(
      Layer.provideMerge(NodeHttpServer.layer(() => httpServer, { port: 0, host: "127.0.0.1" }))
    )
  )
  const address = Context.get(server, HttpServer.HttpServer).address
  const port = address._tag === "TcpAddress" ? address.port : 0
  yield* TerminalUpgrade.install(core, httpServer, { publicUrl: () => `http://127.0.0.1:${port}` })
  const caller = yield* core.authenticate(Redacted.make(key))
  /** A share link's token for one machine (the only credential the terminal accepts). */
  const link = (machine: string) => Effect.map(core.createShare(caller, machine, 3600), (m) => m.token)
  return { core, key, caller, link, base: `127.0.0.1:${port}` }
})

/**
 * An agent driven by hand: a PTY opens with a prompt, input is acknowledged and echoed back as output, and
 * `exit` ends a session with a given code. Every message from the relay is kept in `seen`.
 */
const fakeAgent = (core: RelayCore.RelayCore["Type"], key: string, hostname: string) =>
  Effect.gen(function* () {
    const caller = yield* core.authenticate(Redacted.make(key))
    const toRelay = yield* Queue.unbounded<AgentMessage>()
    const seen = yield* Queue.unbounded<RelayMessage>()
    const offsets = new Map<string, number>()
    const output = (sessionId: string, text: string) => {
      const data = Buffer.from(text)
      const offset = offsets.get(sessionId) ?? 0
      offsets.set(sessionId, offset + data.byteLength)
      return Queue.offer(toRelay, { _tag: "SessionOutput", sessionId, pipe: "stdout", data, offset })
    }
    yield* Queue.offer(toRelay, {
      _tag: "Hello",
      identity: agentIdentity(hostname),
      window: 1 << 20,
      ptySessions: []
    })
    yield* core.connectAgent(caller, Stream.fromQueue(toRelay)).pipe(
      Stream.runForEach((message) =>
        Effect.gen(function* () {
          yield* Queue.offer(seen, message)
          // An attach check (joining a live session) is admitted by this agent: a lone exit 0.
          if (message._tag === "SessionOpen" && message.spec._tag === "Attach")
            yield* Queue.offer(toRelay, {
              _tag: "SessionExit",
              sessionId: message.sessionId,
              exitCode: 0,
              timedOut: false,
              durationMs: 0
            })
          else if (message._tag === "SessionOpen") yield* output(message.sessionId, `welcome to ${hostname}\r\n$ `)
          if (message._tag === "SessionInput") {
            yield* Queue.offer(toRelay, {
              _tag: "SessionAck",
              sessionId: message.sessionId,
              pipe: "stdin",
              bytes: message.data.byteLength
            })
            yield* output(message.sessionId, decoder.decode(message.data))
          }
        })
      ),
      Effect.forkScoped
    )
    // Registered once the relay welcomes it.
    const welcome = yield* Queue.take(seen)
    assert.strictEqual(welcome._tag, "Welcome")
    const exit = (sessionId: string, exitCode: number) =>
      Queue.offer(toRelay, { _tag: "SessionExit", sessionId, exitCode, timedOut: false, durationMs: 1 })
    /** Waits for the next relay message of one kind. */
    const next = <K extends RelayMessage["_tag"]>(tag: K) =>
      Effect.gen(function* () {
        for (;;) {
          const message = yield* Queue.take(seen)
          if (message._tag === tag) return message as Extract<RelayMessage, { _tag: K }>
        }
      })
    return { exit, next }
  })

/** Reads control frames and output until a control frame arrives; returns it with the output before it. */
const nextControl = (client: TerminalClient.TerminalClient) =>
  Effect.gen(function* () {
    let text = ""
    for (;;) {
      const item = yield* Queue.take(client.received)
      if (item._tag === "Output") text += decoder.decode(item.data)
      else return { frame: item.frame, text }
    }
  }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("no control frame in 5 s") }))

/** Reads output until it contains `needle`; returns everything read. */
const outputUntil = (client: TerminalClient.TerminalClient, needle: string) =>
  Effect.gen(function* () {
    let text = ""
    while (!text.includes(needle)) {
      const item = yield* Queue.take(client.received)
      if (item._tag === "Output") text += decoder.decode(item.data)
      else return yield* Effect.fail(new Error(`control frame ${JSON.stringify(item.frame)} before "${needle}"`))
    }
    return text
  }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`no "${needle}" in 5 s`) }))

const upgradeRefusal = (base: string, path: string, headers: Record<string, string> = {}) =>
  TerminalClient.upgradeRefusal(`http://${base}${path}`, headers)

describe("TerminalSocket", () => {
  it.scopedLive("start, output, input, resize; detaching leaves the session listed and joinable", () =>
    Effect.gen(function* () {
      const { base, caller, core, key, link } = yield* setup
      const agent = yield* fakeAgent(core, key, "box-1")
      const token = yield* link("box-1")
      const client = yield* TerminalClient.connect(`ws://${base}/s/${token}/ws`)
      yield* client.send({ type: "start", cols: 100, rows: 30 })
      const open = yield* agent.next("SessionOpen")
      assert.deepStrictEqual(open.spec, {
        _tag: "Pty",
        cols: 100,
        rows: 30,
        term: "xterm-256color",
        command: []
      })
      const attached = yield* nextControl(client)
      assert.strictEqual(attached.frame.type, "attached")
      if (attached.frame.type !== "attached") return
      assert.strictEqual(attached.frame.machine.hostname, "box-1")
      assert.strictEqual(attached.frame.created, true)
      assert.strictEqual(attached.frame.sessionId, open.sessionId)
      assert.include(yield* outputUntil(client, "$ "), "welcome to box-1")

      yield* client.type("echo hi\r")
      assert.strictEqual(decoder.decode((yield* agent.next("SessionInput")).data), "echo hi\r")
      yield* outputUntil(client, "echo hi\r")
      yield* client.send({ type: "input", data: "ü\r" })
      assert.strictEqual(decoder.decode((yield* agent.next("SessionInput")).data), "ü\r")
      yield* outputUntil(client, "ü")

      yield* client.send({ type: "resize", cols: 120, rows: 40 })
      const resize = yield* agent.next("SessionResize")
      assert.deepStrictEqual(
        { sessionId: resize.sessionId, cols: resize.cols, rows: resize.rows },
        { sessionId: open.sessionId, cols: 120, rows: 40 }
      )

      // Detach: the browser closes the socket; the session keeps running, with no viewer left.
      yield* client.close
      assert.strictEqual((yield* client.closed).code, 1000)
      // The relay notices the closed socket on its own time: poll for up to 2 s.
      const listed = yield* core.listSessions(caller, "box-1").pipe(
        Effect.repeat(
          Schedule.spaced("20 millis").pipe(
            Schedule.upTo("2 seconds"),
            Schedule.whileInput((l: { readonly sessions: ReadonlyArray<PtySession> }) => l.sessions[0]?.viewers !== 0),
            Schedule.passthrough
          )
        )
      )
      assert.deepStrictEqual(
        listed.sessions.map((s) => [s.sessionId, s.viewers, s.cols, s.rows]),
        [[open.sessionId, 0, 120, 40]]
      )

      // A reload names its session: it joins the same shell and replays its screen.
      const again = yield* TerminalClient.connect(`ws://${base}/s/${token}/ws`)
      yield* again.send({ type: "start", cols: 120, rows: 40, sessionId: open.sessionId })
      const rejoined = yield* nextControl(again)
      assert.deepStrictEqual(rejoined.frame.type === "attached" && [rejoined.frame.sessionId, rejoined.frame.created], [
        open.sessionId,
        false
      ])
      assert.include(yield* outputUntil(again, "ü"), "echo hi")
    })
  )

  it.scopedLive("the session's end reaches the page: an ended frame, then close 1000", () =>
    Effect.gen(function* () {
      const { base, core, key, link } = yield* setup
      const agent = yield* fakeAgent(core, key, "box-2")
      const client = yield* TerminalClient.connect(`ws://${base}/s/${yield* link("box-2")}/ws`)
      yield* client.send({ type: "start", cols: 80, rows: 24 })
      const open = yield* agent.next("SessionOpen")
      assert.strictEqual((yield* nextControl(client)).frame.type, "attached")
      yield* outputUntil(client, "$ ")
      yield* agent.exit(open.sessionId, 3)
      const ended = yield* nextControl(client)
      assert.deepStrictEqual(ended.frame, {
        type: "ended",
        reason: "exited",
        exitCode: 3,
        message: "the shell exited with code 3"
      })
      assert.deepStrictEqual(yield* client.closed, { code: 1000, reason: "session ended" })
    })
  )

  it.scopedLive("a stale session id opens a new session instead", () =>
    Effect.gen(function* () {
      const { base, core, key, link } = yield* setup
      yield* fakeAgent(core, key, "box-3")
      const client = yield* TerminalClient.connect(`ws://${base}/s/${yield* link("box-3")}/ws`)
      yield* client.send({ type: "start", cols: 80, rows: 24, sessionId: randomUUID() })
      const attached = yield* nextControl(client)
      assert.deepStrictEqual(attached.frame.type === "attached" && attached.frame.created, true)
    })
  )

  it.scopedLive("a share link reaches its machine without ?machine=; revoking it ends the page", () =>
    Effect.gen(function* () {
      const { base, caller, core, key } = yield* setup
      yield* fakeAgent(core, key, "box-4")
      yield* fakeAgent(core, key, "other")
      const minted = yield* core.createShare(caller, "box-4", 3600)
      const client = yield* TerminalClient.connect(`ws://${base}/s/${minted.token}/ws?machine=other`)
      yield* client.send({ type: "start", cols: 80, rows: 24 })
      const attached = yield* nextControl(client)
      assert.deepStrictEqual(attached.frame.type === "attached" && attached.frame.machine.hostname, "box-4")
      yield* outputUntil(client, "$ ")
      yield* core.revokeShare(caller, minted.link.id)
      const ended = yield* nextControl(client)
      assert.deepStrictEqual(ended.frame.type === "ended" && ended.frame.message, "share link revoked")
      assert.strictEqual((yield* client.closed).code, 1000)
      // The revoked token no longer opens anything: refused before any WebSocket exists.
      const late = yield* upgradeRefusal(base, `/s/${minted.token}/ws`)
      assert.strictEqual(late.status, 401)
      assert.include(late.body, "revoked")
    })
  )

  it.scopedLive("a link for one session joins that session, whatever the page asks for", () =>
    Effect.gen(function* () {
      const { base, caller, core, key, link } = yield* setup
      yield* fakeAgent(core, key, "box-6")
      const owner = yield* TerminalClient.connect(`ws://${base}/s/${yield* link("box-6")}/ws`)
      yield* owner.send({ type: "start", cols: 80, rows: 24 })
      const opened = yield* nextControl(owner)
      const sessionId = opened.frame.type === "attached" ? opened.frame.sessionId : ""
      const minted = yield* core.createShare(caller, "box-6", 3600, { sessionId })
      for (const asked of [undefined, randomUUID()]) {
        const guest = yield* TerminalClient.connect(`ws://${base}/s/${minted.token}/ws`)
        yield* guest.send({ type: "start", cols: 80, rows: 24, ...(asked === undefined ? {} : { sessionId: asked }) })
        const joined = yield* nextControl(guest)
        assert.deepStrictEqual(joined.frame.type === "attached" && [joined.frame.sessionId, joined.frame.created], [
          sessionId,
          false
        ])
      }
    })
  )

  it.scopedLive("bad tokens, workspace keys and foreign pages are refused before the upgrade, with a status", () =>
    Effect.gen(function* () {
      const { base, core, key, link } = yield* setup
      yield* fakeAgent(core, key, "box-5")
      const bogus = yield* upgradeRefusal(base, "/s/ck_bogus-token/ws?machine=box-5")
      assert.deepStrictEqual(bogus.status, 401)
      assert.notInclude(bogus.body, "ck_bogus-token")
      const jwt = yield* upgradeRefusal(base, "/s/eyJhbGciOiJFUzI1NiJ9.eyJ4IjoxfQ.c2ln/ws")
      assert.strictEqual(jwt.status, 401)
      // A workspace key in the URL is refused outright: only share links open the terminal.
      const workspaceKey = yield* upgradeRefusal(base, `/s/${key}/ws?machine=box-5`)
      assert.deepStrictEqual(workspaceKey, {
        status: 401,
        body: "only a share link opens the browser terminal (mint one with: cmdop connect share <machine>)\n"
      })
      const token = yield* link("box-5")
      const foreign = yield* upgradeRefusal(base, `/s/${token}/ws`, { origin: "https://evil.example" })
      assert.deepStrictEqual(foreign.status, 403)
      for (const refusal of [bogus, jwt, workspaceKey, foreign]) {
        assert.notMatch(refusal.body, /\n\s+at /, "no stack trace")
        assert.notInclude(refusal.body, key)
      }
      // The relay's own page (same origin) is let through.
      const own = yield* TerminalClient.connect(`ws://${base}/s/${token}/ws`)
      yield* own.send({ type: "start", cols: 80, rows: 24 })
      assert.strictEqual((yield* nextControl(own)).frame.type, "attached")
      assert.isTrue(TerminalUpgrade.originAllowed(`http://${base}`, base, "http://relay.example"))
      assert.isTrue(TerminalUpgrade.originAllowed("https://relay.example", base, "https://relay.example/"))
      assert.isFalse(TerminalUpgrade.originAllowed("https://relay.example.evil", base, "https://relay.example"))
    })
  )

  it.scopedLive("broken and oversized frames close the socket with a code", () =>
    Effect.gen(function* () {
      const { base, core, key, link } = yield* setup
      yield* fakeAgent(core, key, "box-6")
      const token = yield* link("box-6")
      const broken = yield* TerminalClient.connect(`ws://${base}/s/${token}/ws`)
      yield* broken.send(JSON.parse(JSON.stringify({ type: "start", cols: 0, rows: 24 })))
      const { frame } = yield* nextControl(broken)
      assert.deepStrictEqual(frame, { type: "error", message: "unreadable frame" })
      assert.strictEqual((yield* broken.closed).code, TerminalSocket.CloseCode.Protocol)
      // A frame over the 1 MiB cap is refused by the WebSocket layer itself (1009: message too big).
      const big = yield* TerminalClient.connect(`ws://${base}/s/${token}/ws`)
      yield* big.send({ type: "start", cols: 80, rows: 24 })
      assert.strictEqual((yield* nextControl(big)).frame.type, "attached")
      yield* big.type(new Uint8Array(2 * 1024 * 1024))
      assert.strictEqual((yield* big.closed).code, 1009)
    })
  )

  it.scopedLive("a link may own 16 live terminal sessions on its machine; the 17th page is told the limit", () =>
    Effect.gen(function* () {
      const { base, core, key, link } = yield* setup
      yield* fakeAgent(core, key, "box-8")
      const token = yield* link("box-8")
      // Each page opens a new session and goes away; the sessions live on (detached), owned by the link.
      for (let i = 0; i < 16; i++) {
        const page = yield* TerminalClient.connect(`ws://${base}/s/${token}/ws`)
        yield* page.send({ type: "start", cols: 80, rows: 24 })
        assert.strictEqual((yield* nextControl(page)).frame.type, "attached")
        yield* page.close
      }
      const over = yield* TerminalClient.connect(`ws://${base}/s/${token}/ws`)
      yield* over.send({ type: "start", cols: 80, rows: 24 })
      const refused = yield* nextControl(over)
      assert.strictEqual(refused.frame.type, "error")
      assert.include(refused.frame.type === "error" ? refused.frame.message : "", "16 terminal sessions on")
      assert.strictEqual((yield* over.closed).code, TerminalSocket.CloseCode.Exhausted)
    })
  )

  it.scopedLive("a plain GET of the socket address is told to upgrade (426)", () =>
    Effect.gen(function* () {
      const { base, core, key, link } = yield* setup
      yield* fakeAgent(core, key, "box-7")
      const token = yield* link("box-7")
      const response = yield* Effect.promise(() => fetch(`http://${base}/s/${token}/ws`))
      assert.strictEqual(response.status, 426)
      assert.strictEqual(response.headers.get("upgrade"), "websocket")
    })
  )
})
