import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as GrpcClient from "../src/GrpcClient.js"
import * as GrpcServer from "../src/GrpcServer.js"
import { Probe, TestService, makeProbe, setup, testHandlers } from "./fixtures/TestService.js"

// Compile-time checks: `tsc -p packages/grpc` fails when one of these lines stops being an error.
export const typeChecks = Effect.gen(function* () {
  const { client } = yield* setup()
  // @ts-expect-error a server-streaming method is not unary
  yield* client.unary("count", { count: 1, padding: 0 })
  // @ts-expect-error the request type is checked
  yield* client.unary("echo", { txt: "typo" })
  // @ts-expect-error the response type is checked
  const reply: { readonly nope: number } = yield* client.unary("echo", { text: "" })
  // @ts-expect-error a unary method is not a bidi method
  yield* Stream.runDrain(client.bidi("echo", Stream.empty))
  return reply
})

// @ts-expect-error the handlers need `Probe`, so the server does too
export const missingProbe: Effect.Effect<unknown, unknown, import("effect/Scope").Scope> = GrpcServer.make({
  services: [testHandlers]
})

export const wrongHandler = GrpcServer.service(
  { echo: TestService.echo },
  {
    // @ts-expect-error a unary handler must return an Effect of the response type
    echo: () => Effect.succeed({ text: 1 })
  }
)

export const missingHandler = GrpcServer.service(
  { echo: TestService.echo, count: TestService.count },
  // @ts-expect-error every method needs a handler
  { echo: (request) => Effect.succeed({ text: request.text, authorization: null, peer: "" }) }
)

describe("GrpcServer.layer", () => {
  it.scopedLive("provides where the server listens", () =>
    Effect.gen(function* () {
      const server = yield* GrpcServer.GrpcServer
      const client = yield* GrpcClient.make(TestService, { address: server.address })
      assert.strictEqual(server.address, `127.0.0.1:${server.port}`)
      assert.isAbove(server.port, 0)
      const reply = yield* client.unary("echo", { text: "via layer" })
      assert.strictEqual(reply.text, "via layer")
    }).pipe(
      Effect.provide(GrpcServer.layer({ services: [testHandlers] }).pipe(Layer.provide(Layer.effect(Probe, makeProbe))))
    )
  )
})
