import * as grpc from "@grpc/grpc-js"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as net from "node:net"
import * as GrpcClient from "../src/GrpcClient.js"
import * as GrpcStatusError from "../src/GrpcStatusError.js"
import { TestService, setup } from "./fixtures/TestService.js"

const fixture = (name: string) => fs.readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
const accepts = (port: number) =>
  Effect.async<boolean>((resume) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("error", () => resume(Effect.succeed(false)))
  })

describe("unary", () => {
  it.scopedLive("round trip carries request metadata and the peer to the handler", () =>
    Effect.gen(function* () {
      const { client } = yield* setup()
      const reply = yield* client.unary("echo", { text: "héllo" }, { metadata: { authorization: "Bearer t0k" } })
      assert.strictEqual(reply.text, "héllo")
      assert.strictEqual(reply.authorization, "Bearer t0k")
      assert.match(reply.peer, /127\.0\.0\.1:\d+/)
    })
  )

  it.scopedLive("a typed failure comes back with its code, details and trailing metadata", () =>
    Effect.gen(function* () {
      const { client } = yield* setup()
      const payload = { _tag: "MachineError", reason: "NotFound", name: "bürо-1" }
      const error = yield* Effect.flip(
        client.unary("fail", { code: grpc.status.NOT_FOUND, details: "no such machine", payload })
      )
      assert.strictEqual(error._tag, "GrpcStatusError")
      assert.strictEqual(error.code, grpc.status.NOT_FOUND)
      assert.strictEqual(error.details, "no such machine")
      assert.deepStrictEqual(GrpcStatusError.decodePayload(error), Option.some(payload))
      assert.deepStrictEqual(Object.keys(error.metadata ?? {}), [GrpcStatusError.errorMetadataKey])
    })
  )

  it.scopedLive("a defect becomes INTERNAL without leaking its message", () =>
    Effect.gen(function* () {
      const logs: Array<string> = []
      const capture = Logger.make(({ cause, message }) => logs.push(`${String(message)} ${Cause.pretty(cause)}`))
      const { client } = yield* setup().pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
      const error = yield* Effect.flip(client.unary("die", { text: "hunter2" }))
      assert.strictEqual(error.code, grpc.status.INTERNAL)
      assert.strictEqual(error.details, "internal error")
      assert.isUndefined(error.metadata)
      assert.notInclude(JSON.stringify(error), "hunter2")
      // The server logged the defect with its message.
      assert.isTrue(logs.some((line) => line.includes("gRPC handler died") && line.includes("hunter2")))
    })
  )

  it.scopedLive("interrupting the caller cancels the call and interrupts the handler", () =>
    Effect.gen(function* () {
      const { client, probe } = yield* setup()
      const fiber = yield* Effect.fork(client.unary("hang", { text: "" }))
      yield* Deferred.await(probe.started)
      yield* Fiber.interrupt(fiber)
      const stopped = yield* Deferred.await(probe.stopped).pipe(Effect.timeout("2 seconds"))
      assert.deepStrictEqual(stopped, { method: "/test.Test/Hang", cancelled: true })
    })
  )

  it.scopedLive("a deadline gives DEADLINE_EXCEEDED and stops the handler", () =>
    Effect.gen(function* () {
      const { client, probe } = yield* setup()
      const error = yield* Effect.flip(client.unary("hang", { text: "" }, { timeout: "100 millis" }))
      assert.strictEqual(error.code, grpc.status.DEADLINE_EXCEEDED)
      const stopped = yield* Deferred.await(probe.stopped).pipe(Effect.timeout("2 seconds"))
      assert.isTrue(stopped.cancelled)
    })
  )

  it.live("UNAVAILABLE at once when no server listens", () =>
    Effect.scoped(
      Effect.gen(function* () {
        // Take a free port, then close it so nothing listens there.
        const { server } = yield* Effect.scoped(setup())
        const client = yield* GrpcClient.make(TestService, { address: `127.0.0.1:${server.port}` })
        const started = Date.now()
        const error = yield* Effect.flip(client.unary("echo", { text: "anyone?" }))
        assert.strictEqual(error.code, grpc.status.UNAVAILABLE)
        assert.isBelow(Date.now() - started, 2_000)
        const notReady = yield* Effect.flip(GrpcClient.waitForReady(client, "200 millis"))
        assert.strictEqual(notReady.code, grpc.status.UNAVAILABLE)
      })
    )
  )

  it.live("closing the server's scope stops it accepting connections", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { server, client } = yield* Scope.extend(setup(), scope)
      yield* client.waitForReady("2 seconds")
      assert.isTrue(yield* accepts(server.port))
      yield* Scope.close(scope, Effect.void as never)
      assert.isFalse(yield* accepts(server.port))
    })
  )

  it.live("in-flight calls get UNAVAILABLE when the server shuts down", () =>
    Effect.gen(function* () {
      const serverScope = yield* Scope.make()
      const { server, probe } = yield* Scope.extend(setup({ shutdownTimeout: "100 millis" }), serverScope)
      const result = yield* Effect.scoped(
        Effect.gen(function* () {
          const client = yield* GrpcClient.make(TestService, { address: server.address })
          const call = yield* Effect.fork(Effect.either(client.unary("hang", { text: "" })))
          yield* Deferred.await(probe.started)
          yield* Scope.close(serverScope, Effect.void as never)
          return yield* Fiber.join(call).pipe(Effect.timeout("2 seconds"))
        })
      )
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) {
        assert.strictEqual(result.left.code, grpc.status.UNAVAILABLE)
        assert.strictEqual(result.left.details, "server is shutting down")
      }
      const stopped = yield* Deferred.await(probe.stopped)
      assert.isFalse(stopped.cancelled)
    })
  )

  it.scopedLive("TLS with a custom CA", () =>
    Effect.gen(function* () {
      const cert = fixture("localhost.crt")
      const { client } = yield* setup({
        tls: { certChain: cert, privateKey: fixture("localhost.key") },
        clientTls: { caPem: cert }
      })
      const reply = yield* client.unary("echo", { text: "secure" })
      assert.strictEqual(reply.text, "secure")
    })
  )

  it.scopedLive("TLS without trusting the server's CA fails with UNAVAILABLE", () =>
    Effect.gen(function* () {
      const { client } = yield* setup({
        tls: { certChain: fixture("localhost.crt"), privateKey: fixture("localhost.key") },
        clientTls: {}
      })
      const error = yield* Effect.flip(client.unary("echo", { text: "secure" }))
      assert.strictEqual(error.code, grpc.status.UNAVAILABLE)
    })
  )
})
