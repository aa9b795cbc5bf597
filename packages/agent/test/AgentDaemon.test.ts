/**
 * The daemon against a fake relay over real gRPC on 127.0.0.1:0, with a temp HOME: handshake, an exec session end
 * to end, reconnect with backoff after the relay ends the stream or falls silent, a rejected key retried until the
 * user fixes it, `workspace use` making the daemon reconnect under the new key, graceful stop, and `register`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as AgentDaemon from "@cmdop/agent/AgentDaemon"
import * as DaemonCredential from "@cmdop/agent/DaemonCredential"
import * as ProcessRunner from "@cmdop/agent/ProcessRunner"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import { GrpcStatusError } from "@cmdop/grpc/GrpcStatusError"
import * as OAuthSession from "@cmdop/domain/OAuthSession"
import * as CmdopPaths from "@cmdop/node/CmdopPaths"
import type {
  AgentMessage,
  Hello,
  RegisterRequest,
  RelayMessage,
  SessionExit
} from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import { AgentServiceService, Pipe } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as grpc from "@grpc/grpc-js"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as Redacted from "effect/Redacted"
import * as path from "node:path"
import * as ChildProcess from "node:child_process"
import { build, type Plugin } from "esbuild"
import { createRequire } from "node:module"
import { createHash } from "node:crypto"
import { allGone, eventually, isRunning, tempDir, until } from "./helpers.js"

const KEY_A = "ck_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
const KEY_B = "ck_test_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
const KEY_BAD = "ck_test_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"

// ---------------------------------------------------------------------------------------------------------------
// A scriptable fake relay: every Connect call becomes a `Connection` the test drives.

type Control =
  | { readonly _tag: "message"; readonly message: RelayMessage }
  | { readonly _tag: "end" }
  | { readonly _tag: "fail"; readonly error: GrpcStatusError }

interface Connection {
  readonly authorization: string
  /** What the agent sent, in order. */
  readonly received: Queue.Queue<AgentMessage>
  readonly send: (message: RelayMessage) => Effect.Effect<void>
  /** Finishes the call with status OK. */
  readonly end: Effect.Effect<void>
  /** Fails the call with `error`'s status. */
  readonly fail: (error: GrpcStatusError) => Effect.Effect<void>
  /** Completes when the call is over on the relay's side (client cancel or our end). */
  readonly gone: Deferred.Deferred<void>
}

const fakeRelay = Effect.gen(function* () {
  const connections = yield* Queue.unbounded<Connection>()
  const registrations = yield* Queue.unbounded<{ readonly authorization: string; readonly request: RegisterRequest }>()
  const accepted = new Set([`Bearer ${KEY_A}`, `Bearer ${KEY_B}`])
  let refused = 0
  const service = GrpcServer.service(AgentServiceService, {
    register: (request, ctx) =>
      Effect.gen(function* () {
        const authorization = ctx.metadata["authorization"] ?? ""
        if (!accepted.has(authorization))
          return yield* new GrpcStatusError({ code: grpc.status.UNAUTHENTICATED, details: "invalid API key" })
        yield* Queue.offer(registrations, { authorization, request })
        return { machine: machineInfo(request.identity!.machineId), workspaceName: "alpha" }
      }),
    connect: (requests, ctx) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const authorization = ctx.metadata["authorization"] ?? ""
          if (!accepted.has(authorization)) {
            refused++
            return Stream.fail(new GrpcStatusError({ code: grpc.status.UNAUTHENTICATED, details: "invalid API key" }))
          }
          const received = yield* Queue.unbounded<AgentMessage>()
          const out = yield* Queue.unbounded<Control>()
          const gone = yield* Deferred.make<void>()
          yield* Effect.addFinalizer(() => Deferred.succeed(gone, undefined))
          yield* Stream.runForEach(requests, (m) => Queue.offer(received, m)).pipe(Effect.ignore, Effect.forkScoped)
          yield* Queue.offer(connections, {
            authorization,
            received,
            gone,
            send: (message) => Queue.offer(out, { _tag: "message", message }).pipe(Effect.asVoid),
            end: Queue.offer(out, { _tag: "end" }).pipe(Effect.asVoid),
            fail: (error) => Queue.offer(out, { _tag: "fail", error }).pipe(Effect.asVoid)
          })
          return Stream.fromQueue(out).pipe(
            Stream.takeWhile((c) => c._tag !== "end"),
            Stream.mapEffect((c) =>
              c._tag === "fail" ? Effect.fail(c.error) : Effect.succeed((c as { message: RelayMessage }).message)
            )
          )
        })
      )
  })
  const server = yield* GrpcServer.make({
    services: [service],
    host: "127.0.0.1",
    port: 0,
    shutdownTimeout: "200 millis"
  })
  return { address: server.address, connections, registrations, refusedCount: () => refused }
})

const machineInfo = (id: string) => ({
  id,
  workspaceId: "ws_1",
  hostname: "h",
  name: "h",
  os: "linux",
  agentVersion: "0.1.0",
  online: true,
  lastHeartbeatAt: Date.now()
})

const welcome = (hello: Hello, workspaceName: string, window = 65_536): RelayMessage => ({
  kind: {
    $case: "welcome",
    value: {
      machine: machineInfo(hello.identity!.machineId),
      workspaceName,
      heartbeatSeconds: 30,
      window,
      relayAddresses: []
    }
  }
})

// ---------------------------------------------------------------------------------------------------------------
// A temp HOME with a workspace store, and the daemon running in it.

/** Writes the store the way the CLI does (temp file + rename), with `active` chosen. */
const writeStore = (home: string, server: string, active: string, keys: { alpha: string; beta: string }) => {
  const file = path.join(home, ".cmdop", "ssh_workspaces.json")
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  const text = JSON.stringify({
    active,
    workspaces: [
      { name: "alpha", api_key: keys.alpha, server },
      { name: "beta", api_key: keys.beta, server }
    ]
  })
  fs.writeFileSync(file + ".tmp", text, { mode: 0o600 })
  fs.renameSync(file + ".tmp", file)
}

const readStatus = (home: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(fs.readFileSync(path.join(home, ".cmdop", "daemon.status"), "utf8"))
  } catch {
    return undefined
  }
}

/** What the app gives the daemon; `oauth` stands in for a `cmdop login` session (none by default). */
const environment = (home: string, oauth: Layer.Layer<OAuthSession.OAuthSession> = OAuthSession.layerEmpty) =>
  DaemonCredential.layer.pipe(
    Layer.provide(oauth),
    Layer.provideMerge(Layer.mergeAll(NodeFileSystem.layer, CmdopPaths.layerHome(home))),
    Layer.merge(Layer.effect(ProcessRunner.ProcessRunner, ProcessRunner.make({ killGrace: "300 millis" }))),
    // No CMDOP_* variables from the machine running the tests.
    Layer.merge(Layer.setConfigProvider(ConfigProvider.fromMap(new Map()))),
    Layer.merge(Logger.minimumLogLevel(LogLevel.None))
  )

const testOptions: AgentDaemon.Options = {
  backoff: { base: "100 millis", cap: "200 millis" },
  credentialPollInterval: "100 millis",
  heartbeatInterval: "100 millis",
  // The fake relay sends nothing unprompted; only the silence test relies on the timeout.
  relaySilenceTimeout: "1 hour",
  handshakeTimeout: "2 seconds",
  pty: { shell: "/bin/sh", killGrace: "300 millis" }
}

const startDaemon = (
  home: string,
  options: AgentDaemon.Options = testOptions,
  oauth?: Layer.Layer<OAuthSession.OAuthSession>
) => AgentDaemon.run(options).pipe(Effect.provide(environment(home, oauth)), Effect.forkScoped)

/**
 * Fails instead of hanging. A safety net, not a bound under test: generous, since a loaded 2-core machine may take
 * seconds to dial loopback.
 */
const within = <A, E, R>(what: string, self: Effect.Effect<A, E, R>, millis = 15_000) =>
  Effect.timeoutFail(self, { duration: millis, onTimeout: () => new Error(`timed out waiting for ${what}`) })

const statusIs = (home: string, state: string, workspace?: string) =>
  eventually(`status ${state}`, () => {
    const s = readStatus(home)
    return s?.state === state && (workspace === undefined || s.workspace === workspace) ? s : undefined
  })

/** Takes the agent's messages until `stop` holds for one (returned last). */
const receiveUntil = (connection: Connection, stop: (m: AgentMessage) => boolean) =>
  within(
    "agent messages",
    Effect.gen(function* () {
      const got: Array<AgentMessage> = []
      for (;;) {
        const m = yield* Queue.take(connection.received)
        got.push(m)
        if (stop(m)) return got
      }
    })
  )

const helloOf = (connection: Connection) =>
  Effect.map(
    receiveUntil(connection, (m) => m.kind?.$case === "hello"),
    (got) => {
      assert.strictEqual(got.length, 1, "Hello comes first")
      return (got[0]!.kind as { value: Hello }).value
    }
  )

/** Accepts the next connection: checks the key, answers Hello with Welcome. */
const accept = (relay: Effect.Effect.Success<typeof fakeRelay>, key: string, workspaceName: string) =>
  Effect.gen(function* () {
    const connection = yield* within("a connection", Queue.take(relay.connections))
    assert.strictEqual(connection.authorization, `Bearer ${key}`)
    const hello = yield* helloOf(connection)
    yield* connection.send(welcome(hello, workspaceName))
    return { connection, hello }
  })

const exec = (sessionId: string, argv: ReadonlyArray<string>): RelayMessage => ({
  kind: {
    $case: "open",
    value: {
      sessionId,
      kind: { $case: "exec", value: { argv: [...argv], shell: false, timeoutMs: 0, stdin: false, env: {}, cwd: "" } },
      caller: undefined
    }
  }
})

const runExec = (connection: Connection, sessionId: string, argv: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    yield* connection.send(exec(sessionId, argv))
    const got = yield* receiveUntil(connection, (m) => m.kind?.$case === "exit" && m.kind.value.sessionId === sessionId)
    const stdout = Buffer.concat(
      got.flatMap((m) =>
        m.kind?.$case === "output" && m.kind.value.sessionId === sessionId && m.kind.value.pipe === Pipe.PIPE_STDOUT
          ? [m.kind.value.data]
          : []
      )
    ).toString("utf8")
    return { stdout, exit: (got[got.length - 1]!.kind as { value: SessionExit }).value, got }
  })

/** Reads the first line a session prints (a pid), acknowledging nothing. */
const firstLine = (connection: Connection, sessionId: string) =>
  Effect.map(
    receiveUntil(connection, (m) => m.kind?.$case === "output" && m.kind.value.sessionId === sessionId),
    (got) => Number((got[got.length - 1]!.kind as { value: { data: Buffer } }).value.data.toString("utf8").trim())
  )

/** A logger that keeps each message's text in `lines`. */
const capturing = (lines: Array<string>) =>
  Logger.make(({ message }) => {
    lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
  })

/** A port on 127.0.0.1 nothing listens on (it was bound, then closed): connecting there is refused. */
const closedPort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

describe("AgentDaemon", () => {
  it.scopedLive("handshakes, serves an exec, heartbeats, and reconnects after the relay ends the stream", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay
      const home = yield* tempDir("cmdop-daemon-")
      writeStore(home, relay.address, "alpha", { alpha: KEY_A, beta: KEY_B })
      yield* startDaemon(home)

      const { connection, hello } = yield* accept(relay, KEY_A, "alpha")
      const agentJson = JSON.parse(fs.readFileSync(path.join(home, ".cmdop", "agent.json"), "utf8"))
      assert.strictEqual(hello.identity!.machineId, agentJson.machine_id)
      assert.strictEqual(hello.identity!.machineSecret, agentJson.machine_secret)
      assert.strictEqual(hello.identity!.hostname, agentJson.hostname)
      assert.strictEqual(hello.identity!.agentVersion, AgentDaemon.AGENT_VERSION)
      assert.strictEqual(hello.identity!.os, `${process.platform} ${os.release()}`)
      assert.strictEqual(hello.window, AgentDaemon.DEFAULT_WINDOW)

      const online = yield* statusIs(home, "ONLINE", "alpha")
      assert.strictEqual(online.server, relay.address)
      assert.strictEqual(online.machine_id, agentJson.machine_id)
      assert.strictEqual(online.pid, process.pid)
      assert.match(String(online.since), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)

      const { exit, got, stdout } = yield* runExec(connection, "s1", ["sh", "-c", "echo hi; exit 4"])
      assert.strictEqual(stdout, "hi\n")
      assert.strictEqual(exit.exitCode, 4)
      assert.isTrue(got.every((m) => m.kind?.$case !== "hello"))
      yield* receiveUntil(connection, (m) => m.kind?.$case === "heartbeat")

      yield* connection.end
      const endedAt = Date.now()
      const next = yield* accept(relay, KEY_A, "alpha")
      // Attempt 0 after a successful handshake: a jittered delay of at most 100 ms (plus dialing). The bound is far
      // above that, for a loaded machine, and far below anything else the daemon could be waiting for (the relay
      // silence timeout is an hour here).
      assert.isBelow(Date.now() - endedAt, 10_000)
      assert.strictEqual(next.hello.identity!.machineId, agentJson.machine_id)
      const again = yield* runExec(next.connection, "s2", ["echo", "again"])
      assert.strictEqual(again.stdout, "again\n")
    })
  )

  it.scopedLive("PTY sessions outlive the stream: the next Hello lists them and a replay resends their output", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay
      const home = yield* tempDir("cmdop-daemon-")
      writeStore(home, relay.address, "alpha", { alpha: KEY_A, beta: KEY_B })
      yield* startDaemon(home)
      const first = yield* accept(relay, KEY_A, "alpha")
      assert.deepStrictEqual(first.hello.ptySessions, [])
      yield* first.connection.send({
        kind: {
          $case: "open",
          value: {
            sessionId: "p",
            kind: { $case: "pty", value: { cols: 80, rows: 24, term: "", command: [] } },
            caller: { kind: "key", principal: "ck_test_AAAA", shareId: "" }
          }
        }
      })
      yield* first.connection.send({
        kind: {
          $case: "input",
          value: { sessionId: "p", data: Buffer.from("echo $((6*7))x; echo shell=$$\n"), eof: false, caller: undefined }
        }
      })
      let seen = ""
      yield* receiveUntil(first.connection, (m) => {
        if (m.kind?.$case === "output" && m.kind.value.sessionId === "p") seen += m.kind.value.data.toString("latin1")
        return /shell=\d+\r\n/.test(seen)
      })
      assert.include(seen, "42x\r\n")
      const shellPid = Number(/shell=(\d+)/.exec(seen)![1])

      yield* first.connection.end
      const second = yield* accept(relay, KEY_A, "alpha")
      assert.isTrue(isRunning(shellPid))
      const listed = second.hello.ptySessions
      assert.strictEqual(listed.length, 1)
      assert.strictEqual(listed[0]!.sessionId, "p")
      assert.strictEqual(listed[0]!.command, "/bin/sh -l")
      assert.strictEqual(listed[0]!.owner, "ck_test_AAAA")
      assert.strictEqual(listed[0]!.cols, 80)
      assert.isAtLeast(listed[0]!.outputOffset, Buffer.byteLength(seen, "latin1"))

      yield* second.connection.send({ kind: { $case: "replay", value: { sessionId: "p", fromOffset: 0 } } })
      let replayed = ""
      const got = yield* receiveUntil(second.connection, (m) => {
        if (m.kind?.$case === "output" && m.kind.value.sessionId === "p")
          replayed += m.kind.value.data.toString("latin1")
        return replayed.length >= seen.length
      })
      const firstOutput = got.find((m) => m.kind?.$case === "output")!
      assert.strictEqual((firstOutput.kind as { value: { offset: number } }).value.offset, 0)
      assert.strictEqual(replayed.slice(0, seen.length), seen)
    })
  )

  it.scopedLive("switching the active workspace drops the stream and reconnects under the new key", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay
      const home = yield* tempDir("cmdop-daemon-")
      writeStore(home, relay.address, "alpha", { alpha: KEY_A, beta: KEY_B })
      yield* startDaemon(home)
      const first = yield* accept(relay, KEY_A, "alpha")
      yield* statusIs(home, "ONLINE", "alpha")
      yield* first.connection.send(exec("old", ["sh", "-c", "echo $$; exec sleep 100"]))
      const pid = yield* firstLine(first.connection, "old")
      assert.isTrue(isRunning(pid))
      // Nothing else makes the daemon reconnect: the stream stays up while the store is unchanged.
      yield* Effect.sleep("400 millis")
      assert.strictEqual(yield* Queue.size(relay.connections), 0)
      assert.isFalse(yield* Deferred.isDone(first.connection.gone))

      const switchedAt = Date.now()
      writeStore(home, relay.address, "beta", { alpha: KEY_A, beta: KEY_B })
      yield* within("the old stream to close", Deferred.await(first.connection.gone))
      const second = yield* accept(relay, KEY_B, "beta")
      // The store is polled every 100 ms; nothing else would ever end this stream (see above), so the bound only
      // has to be finite: generous for a loaded machine.
      assert.isBelow(Date.now() - switchedAt, 10_000)
      assert.strictEqual(second.hello.identity!.machineId, first.hello.identity!.machineId)
      yield* statusIs(home, "ONLINE", "beta")
      yield* allGone([pid])
      const { stdout } = yield* runExec(second.connection, "new", ["echo", "beta"])
      assert.strictEqual(stdout, "beta\n")
    })
  )

  it.scopedLive("a refused key is retried with backoff (status says why, key masked) until the user fixes it", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay
      const home = yield* tempDir("cmdop-daemon-")
      writeStore(home, relay.address, "alpha", { alpha: KEY_BAD, beta: KEY_B })
      yield* startDaemon(home)
      const refusing = yield* eventually("a refusal in the status", () => {
        const s = readStatus(home)
        return s?.state === "CONNECTING" && typeof s.last_error === "string" ? s : undefined
      })
      assert.include(String(refusing.last_error), "UNAUTHENTICATED")
      assert.include(String(refusing.last_error), "ck_test_…XXXX")
      assert.notInclude(JSON.stringify(refusing), KEY_BAD)
      // It does keep retrying: three more refusals come, however slow the machine.
      const before = relay.refusedCount()
      const startedAt = Date.now()
      yield* eventually("three more refusals", () => (relay.refusedCount() - before >= 3 ? true : undefined))
      // Delays drawn from [0, 200 ms): about ten a second, never a tight loop. A loaded machine only makes attempts
      // rarer, so the ceiling scales with the time actually observed (at least one second).
      yield* Effect.sleep("1 second")
      const seconds = (Date.now() - startedAt) / 1_000
      assert.isAtMost(relay.refusedCount() - before, 40 * seconds)
      assert.strictEqual(yield* Queue.size(relay.connections), 0)

      writeStore(home, relay.address, "alpha", { alpha: KEY_A, beta: KEY_B })
      yield* accept(relay, KEY_A, "alpha")
      const online = yield* statusIs(home, "ONLINE", "alpha")
      assert.isUndefined(online.last_error)
    })
  )

  it.scopedLive("a stream the relay fails (it went away) is dialed again", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay
      const home = yield* tempDir("cmdop-daemon-")
      writeStore(home, relay.address, "alpha", { alpha: KEY_A, beta: KEY_B })
      const daemon = yield* startDaemon(home)
      const first = yield* accept(relay, KEY_A, "alpha")
      yield* statusIs(home, "ONLINE", "alpha")
      yield* first.connection.fail(
        new GrpcStatusError({ code: grpc.status.UNAVAILABLE, details: "Connection dropped" })
      )
      const next = yield* accept(relay, KEY_A, "alpha")
      assert.isNull(daemon.unsafePoll(), "the daemon goes on")
      const { stdout } = yield* runExec(next.connection, "again", ["echo", "again"])
      assert.strictEqual(stdout, "again\n")
    })
  )

  it.scopedLive("with several relay nodes, the log and the status name the node connected to or tried", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay
      const dead = `127.0.0.1:${yield* closedPort}`
      const server = `${dead},${relay.address}`
      const home = yield* tempDir("cmdop-daemon-")
      writeStore(home, server, "alpha", { alpha: KEY_A, beta: KEY_B })
      const logs: Array<string> = []
      yield* AgentDaemon.run(testOptions).pipe(
        Logger.withMinimumLogLevel(LogLevel.Info),
        Effect.provide(Logger.replace(Logger.defaultLogger, capturing(logs))),
        Effect.provide(environment(home)),
        Effect.forkScoped
      )
      const first = yield* accept(relay, KEY_A, "alpha")
      const online = yield* statusIs(home, "ONLINE", "alpha")
      assert.strictEqual(online.server, server)
      assert.strictEqual(online.relay, relay.address)
      yield* until("the connect line", () => logs.includes(`connected to relay ${relay.address}`))

      // The node ends the stream; the next attempt goes to the other node of the list, which is down.
      // (The first attempt may have gone there already: the daemon starts on a random node of the list.)
      yield* first.connection.end
      yield* until("the closed stream's line", () => logs.includes(`relay ${relay.address} closed the stream`))
      const closedAt = logs.indexOf(`relay ${relay.address} closed the stream`)
      yield* until("the failed attempt's line", () =>
        logs.slice(closedAt).some((line) => line.startsWith(`relay ${dead}: `))
      )
      yield* accept(relay, KEY_A, "alpha")
      const back = yield* statusIs(home, "ONLINE", "alpha")
      assert.strictEqual(back.relay, relay.address)
      assert.isFalse(
        logs.some((line) => line.includes(server)),
        `no line names the whole list: ${logs.join("\n")}`
      )
    })
  )

  it.scopedLive("a relay that falls silent is dropped and dialed again", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay
      const home = yield* tempDir("cmdop-daemon-")
      writeStore(home, relay.address, "alpha", { alpha: KEY_A, beta: KEY_B })
      yield* startDaemon(home, { ...testOptions, relaySilenceTimeout: "300 millis" })
      const first = yield* accept(relay, KEY_A, "alpha")
      yield* within("the silent stream to be dropped", Deferred.await(first.connection.gone))
      yield* accept(relay, KEY_A, "alpha")
      yield* statusIs(home, "ONLINE", "alpha")
    })
  )

  it.scopedLive("interrupting the daemon cancels the stream, kills sessions and writes STOPPED", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay
      const home = yield* tempDir("cmdop-daemon-")
      writeStore(home, relay.address, "alpha", { alpha: KEY_A, beta: KEY_B })
      const daemon = yield* startDaemon(home)
      const { connection } = yield* accept(relay, KEY_A, "alpha")
      yield* statusIs(home, "ONLINE", "alpha")
      assert.strictEqual(fs.readFileSync(path.join(home, ".cmdop", "cmdop.pid"), "utf8"), `${process.pid}\n`)
      yield* connection.send(exec("s", ["sh", "-c", "echo $$; exec sleep 100"]))
      const pid = yield* firstLine(connection, "s")
      yield* connection.send({
        kind: {
          $case: "open",
          value: {
            sessionId: "p",
            kind: { $case: "pty", value: { cols: 80, rows: 24, term: "", command: ["/bin/sh"] } },
            caller: undefined
          }
        }
      })
      yield* connection.send({
        kind: {
          $case: "input",
          value: { sessionId: "p", data: Buffer.from("echo shell=$$\n"), eof: false, caller: undefined }
        }
      })
      let seen = ""
      yield* receiveUntil(connection, (m) => {
        if (m.kind?.$case === "output" && m.kind.value.sessionId === "p") seen += m.kind.value.data.toString("latin1")
        return /shell=\d+\r\n/.test(seen)
      })
      const shellPid = Number(/shell=(\d+)/.exec(seen)![1])

      yield* within("the daemon to stop", Fiber.interrupt(daemon))
      yield* within("the relay to see the stream close", Deferred.await(connection.gone))
      assert.isFalse(isRunning(pid))
      assert.isFalse(isRunning(shellPid), "PTY sessions end with the daemon")
      assert.strictEqual(readStatus(home)?.state, "STOPPED")
      assert.isFalse(fs.existsSync(path.join(home, ".cmdop", "cmdop.pid")))
    })
  )

  it.scopedLive("register sends the identity under the resolved key and records the relay", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay
      const home = yield* tempDir("cmdop-daemon-")
      writeStore(home, relay.address, "alpha", { alpha: KEY_A, beta: KEY_B })
      const response = yield* AgentDaemon.register({ hostname: "web-1", name: "Web 1" }).pipe(
        Effect.provide(environment(home))
      )
      assert.strictEqual(response.workspaceName, "alpha")
      const { authorization, request } = yield* Queue.take(relay.registrations)
      assert.strictEqual(authorization, `Bearer ${KEY_A}`)
      const agentJson = JSON.parse(fs.readFileSync(path.join(home, ".cmdop", "agent.json"), "utf8"))
      assert.strictEqual(request.identity!.machineId, agentJson.machine_id)
      assert.strictEqual(request.identity!.machineSecret, agentJson.machine_secret)
      assert.strictEqual(request.identity!.hostname, "web-1")
      assert.strictEqual(request.identity!.name, "Web 1")
      assert.strictEqual(response.machine!.id, agentJson.machine_id)
      assert.strictEqual(agentJson.server, relay.address)

      writeStore(home, relay.address, "alpha", { alpha: KEY_BAD, beta: KEY_B })
      const refused = yield* AgentDaemon.register().pipe(Effect.provide(environment(home)), Effect.either)
      assert.isTrue(Either.isLeft(refused))
      if (Either.isLeft(refused)) {
        assert.instanceOf(refused.left, GrpcStatusError)
        assert.strictEqual((refused.left as GrpcStatusError).code, grpc.status.UNAUTHENTICATED)
      }
    })
  )

  it.scopedLive("with no key anywhere else the daemon connects with the OAuth session's token and relay", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay
      const home = yield* tempDir("cmdop-daemon-")
      yield* startDaemon(
        home,
        testOptions,
        OAuthSession.layerStatic({ accessToken: Redacted.make(KEY_B), server: relay.address })
      )
      const { connection } = yield* accept(relay, KEY_B, "beta")
      const online = yield* statusIs(home, "ONLINE", "beta")
      assert.strictEqual(online.server, relay.address)
      const { stdout } = yield* runExec(connection, "o", ["echo", "oauth"])
      assert.strictEqual(stdout, "oauth\n")
    })
  )

  it.scopedLive("without any credential the daemon keeps CONNECTING and says how to fix it", () =>
    Effect.gen(function* () {
      const home = yield* tempDir("cmdop-daemon-")
      const daemon = yield* startDaemon(home)
      const s = yield* eventually("the status", () => {
        const s = readStatus(home)
        return s?.state === "CONNECTING" && s.last_error !== undefined ? s : undefined
      })
      assert.include(String(s.last_error), "no credential")
      assert.isNull(daemon.unsafePoll())
      yield* Fiber.interrupt(daemon)
      assert.strictEqual(readStatus(home)?.state, "STOPPED")
      assert.isTrue(Exit.isInterrupted(yield* Fiber.await(daemon)))
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------
// The daemon as a real process, killed with SIGKILL.

/**
 * `@cmdop/node`'s native bindings (the file lock, koffi for `posix_spawn`) stay external, imported by their absolute
 * paths: this package does not depend on them directly, so Node would not find them by name from here.
 */
const nativeFromNodePackage: Plugin = {
  name: "native-from-node-package",
  setup(b) {
    const fromNode = createRequire(path.join(import.meta.dirname, "..", "..", "node", "package.json"))
    b.onResolve({ filter: /^(fs-native-extensions|koffi)$/ }, (args) => ({
      path: fromNode.resolve(args.path),
      external: true
    }))
  }
}

/** What the bundle was built from: every input file (absolute path) and a hash over their contents. */
interface BundleInputs {
  readonly files: ReadonlyArray<string>
  readonly hash: string
}

const hashOf = (files: ReadonlyArray<string>): string | undefined => {
  // The native binding is left external by its absolute path (in the bundle's text): a different one builds again.
  const native = createRequire(path.join(import.meta.dirname, "..", "..", "node", "package.json")).resolve(
    "fs-native-extensions"
  )
  const hash = createHash("sha256").update(BUNDLE_OPTIONS_VERSION).update("\0").update(native).update("\0")
  try {
    for (const file of files) hash.update(file).update("\0").update(fs.readFileSync(file)).update("\0")
  } catch {
    return undefined // an input is gone: build again
  }
  return hash.digest("hex")
}

/** Bump when the build options below change (they are not part of the inputs' hash). */
const BUNDLE_OPTIONS_VERSION = "2"

/**
 * The daemon fixture bundled once, next to the agent's node_modules (so node-pty, left external, resolves). A bundle
 * left by an earlier run is reused when every file it was built from is byte-for-byte the same (esbuild's metafile
 * lists them); any change to any of them builds it again.
 */
let bundling: Promise<string> | undefined
const daemonBundle = Effect.promise(
  () =>
    (bundling ??= (async () => {
      const outfile = path.join(import.meta.dirname, "..", "node_modules", ".cache", "cmdop-agent-test", "daemon.mjs")
      const inputsFile = `${outfile}.inputs.json`
      try {
        const previous = JSON.parse(fs.readFileSync(inputsFile, "utf8")) as BundleInputs
        if (fs.existsSync(outfile) && hashOf(previous.files) === previous.hash) return outfile
      } catch {
        // no usable record of an earlier build
      }
      const result = await build({
        entryPoints: [path.join(import.meta.dirname, "fixtures", "daemonMain.ts")],
        outfile,
        bundle: true,
        format: "esm",
        platform: "node",
        target: "node20",
        mainFields: ["module", "main"],
        external: ["@lydell/node-pty"],
        plugins: [nativeFromNodePackage],
        banner: { js: 'import { createRequire } from "node:module"; const require = createRequire(import.meta.url);' },
        metafile: true,
        logLevel: "warning"
      })
      const files = Object.keys(result.metafile.inputs).map((input) => path.resolve(input))
      const hash = hashOf(files)
      if (hash !== undefined) fs.writeFileSync(inputsFile, JSON.stringify({ files, hash } satisfies BundleInputs))
      return outfile
    })())
)

/** Starts the daemon in its own process under `home`, with `key` for `server`; SIGKILLed with the scope if alive. */
const spawnDaemon = (bundle: string, home: string, server: string, key: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const env: Record<string, string> = {}
      for (const [name, value] of Object.entries(process.env))
        if (value !== undefined && !name.startsWith("CMDOP_")) env[name] = value
      Object.assign(env, {
        HOME: home,
        XDG_STATE_HOME: path.join(home, ".local", "state"),
        CMDOP_API_KEY: key,
        CMDOP_SERVER: server
      })
      return ChildProcess.spawn(process.execPath, [bundle], { env, stdio: "ignore" })
    }),
    (child) => Effect.sync(() => void (child.exitCode === null && child.kill("SIGKILL")))
  )

/** The watchdogs `/proc` knows for the ledger under `home`. */
const watchdogsOf = (home: string) =>
  fs.readdirSync("/proc").flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return []
    try {
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0")
      return argv.includes("cmdop-watchdog") && argv.some((a) => a.startsWith(home)) ? [Number(entry)] : []
    } catch {
      return []
    }
  })

const ledgerOf = (home: string) => path.join(home, ".local", "state", "cmdop", "children")

/** Starts an exec session and a PTY session whose jobs ignore HUP and TERM; answers every pid involved. */
const startWork = (connection: Connection) =>
  Effect.gen(function* () {
    yield* connection.send({
      kind: {
        $case: "open",
        value: {
          sessionId: "e",
          kind: {
            $case: "exec",
            value: {
              argv: ["sh", "-c", "echo $$; sleep 100 & echo $!; wait"],
              shell: false,
              timeoutMs: 60_000,
              stdin: false,
              env: {},
              cwd: ""
            }
          },
          caller: undefined
        }
      }
    })
    let execOut = ""
    yield* receiveUntil(connection, (m) => {
      if (m.kind?.$case === "output" && m.kind.value.sessionId === "e") execOut += m.kind.value.data.toString("utf8")
      return execOut.split("\n").length >= 3
    })
    yield* connection.send({
      kind: {
        $case: "open",
        value: {
          sessionId: "p",
          kind: { $case: "pty", value: { cols: 80, rows: 24, term: "", command: ["/bin/sh"] } },
          caller: undefined
        }
      }
    })
    yield* connection.send({
      kind: {
        $case: "input",
        value: {
          sessionId: "p",
          data: Buffer.from(`echo shell=$$; sh -c 'trap "" HUP TERM; exec sleep 102' & echo stubborn=$!\n`),
          eof: false,
          caller: undefined
        }
      }
    })
    let seen = ""
    yield* receiveUntil(connection, (m) => {
      if (m.kind?.$case === "output" && m.kind.value.sessionId === "p") seen += m.kind.value.data.toString("latin1")
      return /stubborn=\d+\r\n/.test(seen)
    })
    const pids = [
      ...execOut
        .split("\n")
        .filter((l) => /^\d+$/.test(l))
        .map(Number),
      Number(/shell=(\d+)/.exec(seen)![1]),
      Number(/stubborn=(\d+)/.exec(seen)![1])
    ]
    assert.strictEqual(pids.length, 4)
    yield* until("every process to run", () => pids.every(isRunning))
    return pids
  })

describe("a dead agent leaves nothing running", () => {
  it.scopedLive("kill -9 of the agent: its watchdog kills its commands and shells at once", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay
      const home = yield* tempDir("cmdop-dead-")
      const agent = yield* spawnDaemon(yield* daemonBundle, home, relay.address, KEY_A)
      const { connection } = yield* accept(relay, KEY_A, "alpha")
      const pids = yield* startWork(connection)
      const listed = fs.readFileSync(ledgerOf(home), "utf8").trim().split("\n")
      assert.deepStrictEqual(
        listed.map((line) => line.split(" ").slice(0, 2).join(" ")).sort(),
        [`group ${pids[0]}`, `session ${pids[2]}`].sort()
      )
      assert.strictEqual(watchdogsOf(home).length, 1)

      process.kill(agent.pid!, "SIGKILL")
      yield* allGone(pids)
      yield* until("the watchdog to end", () => watchdogsOf(home).length === 0)
    })
  )

  it.scopedLive("when the watchdog died too, the next daemon reaps what the last one left", () =>
    Effect.gen(function* () {
      const relay = yield* fakeRelay
      const home = yield* tempDir("cmdop-dead-")
      const bundle = yield* daemonBundle
      const first = yield* spawnDaemon(bundle, home, relay.address, KEY_A)
      const { connection } = yield* accept(relay, KEY_A, "alpha")
      const pids = yield* startWork(connection)
      for (const pid of watchdogsOf(home)) process.kill(pid, "SIGKILL")
      process.kill(first.pid!, "SIGKILL")
      yield* until("the first daemon to be gone", () => !isRunning(first.pid!))
      // The shell itself may die of the terminal's hangup; the exec command and the job that ignores HUP do not.
      const survivors = [pids[0]!, pids[1]!, pids[3]!]
      assert.isTrue(survivors.every(isRunning), "left running: nobody was there to kill them")

      yield* spawnDaemon(bundle, home, relay.address, KEY_A)
      yield* accept(relay, KEY_A, "alpha")
      yield* allGone(pids)
      assert.deepStrictEqual(pids.filter(isRunning), [], "reaped by the next daemon")
    })
  )
})
