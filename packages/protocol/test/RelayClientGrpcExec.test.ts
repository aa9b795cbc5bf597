/**
 * How `RelayClientGrpc`'s exec stream ends, against a hand-written relay over loopback gRPC: it stops at `Exit`
 * (nothing after it is delivered), skips what it cannot read, and a call that ends without `Exit` fails with
 * `RelayError` Unavailable after the output that did arrive; a loop of execs does not lose its connection.
 */
import { Machine, MachineId, WorkspaceId } from "@cmdop/domain/Machine"
import { ExecEvent } from "@cmdop/domain/RelayClient"
import * as ClientService from "@cmdop/protocol/ClientService"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import { unreadable } from "@cmdop/protocol/Unreadable"
import * as GrpcServer from "@cmdop/grpc/GrpcServer"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as path from "node:path"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array) => new TextDecoder().decode(data)

/** A relay whose exec answers `events` to every call; no other method is called here. */
const relayAnswering = (events: ReadonlyArray<ExecEvent | typeof unreadable>) =>
  Effect.gen(function* () {
    const service = GrpcServer.service(ClientService.definition, {
      exec: () => Stream.fromIterable(events)
    } as any) // only exec is called here
    const server = yield* GrpcServer.make({ services: [service], host: "127.0.0.1", port: 0 })
    return yield* RelayClientGrpc.make({ server: server.address, apiKey: Redacted.make("key") })
  })

const started = ExecEvent.Started({
  machine: new Machine({
    id: MachineId.make("0b9f5c1e-8a4d-4c7e-9f21-3d6b2a7e5c10"),
    workspaceId: WorkspaceId.make("ws"),
    hostname: "box",
    name: "box",
    os: "linux",
    agentVersion: "1.0.0",
    online: true
  }),
  sessionId: "s-1"
})

/** The stream's output as `tag:text` strings. */
const shown = (events: ReadonlyArray<ExecEvent>) =>
  events.map((e) => (e._tag === "Stdout" || e._tag === "Stderr" ? `${e._tag}:${text(e.data)}` : e._tag))

describe("RelayClientGrpc exec", () => {
  it.scopedLive("takes the server as the CLI spells it: http:// plaintext, https:// TLS (it was a host name)", () =>
    Effect.gen(function* () {
      const fixtures = new URL("../../testkit/fixtures/", import.meta.url).pathname
      const cert = fs.readFileSync(path.join(fixtures, "localhost.crt"), "utf8")
      const services = [
        GrpcServer.service(ClientService.definition, {
          exec: () => Stream.make(started, ExecEvent.Exit({ exitCode: 0, timedOut: false, durationMs: 1 }))
        } as any)
      ]
      const plain = yield* GrpcServer.make({ services, host: "127.0.0.1", port: 0 })
      const secure = yield* GrpcServer.make({
        services,
        host: "127.0.0.1",
        port: 0,
        tls: { certChain: cert, privateKey: fs.readFileSync(path.join(fixtures, "localhost.key"), "utf8") }
      })
      const port = (address: string) => address.replace(/^.*:/, "")
      for (const [server, tls] of [
        [`http://${plain.address}`, undefined],
        [`https://localhost:${port(secure.address)}`, { caPem: cert }]
      ] as const) {
        const client = yield* RelayClientGrpc.make({ server, apiKey: Redacted.make("key"), ...(tls ? { tls } : {}) })
        const events = Chunk.toReadonlyArray(yield* Stream.runCollect(client.exec({ machine: "box", argv: ["x"] })))
        assert.deepStrictEqual(shown(events), ["Started", "Exit"], server)
      }
    })
  )

  it.scopedLive("ends at Exit: output in order, unreadable events skipped, nothing after Exit", () =>
    Effect.gen(function* () {
      const client = yield* relayAnswering([
        started,
        ExecEvent.Stdout({ data: bytes("a") }),
        unreadable,
        ExecEvent.Stderr({ data: bytes("b") }),
        ExecEvent.Stdout({ data: bytes("c") }),
        ExecEvent.Exit({ exitCode: 3, timedOut: false, durationMs: 1 }),
        ExecEvent.Stdout({ data: bytes("after") })
      ])
      const events = Chunk.toReadonlyArray(yield* Stream.runCollect(client.exec({ machine: "box", argv: ["x"] })))
      assert.deepStrictEqual(shown(events), ["Started", "Stdout:a", "Stderr:b", "Stdout:c", "Exit"])
      const exit = events.at(-1)
      assert.strictEqual(exit?._tag === "Exit" && exit.exitCode, 3)
    })
  )

  it.scopedLive("a call that ends without Exit fails with Unavailable, after the output that arrived", () =>
    Effect.gen(function* () {
      const client = yield* relayAnswering([
        started,
        ExecEvent.Stdout({ data: bytes("a") }),
        ExecEvent.Stderr({ data: bytes("b") })
      ])
      const seen: Array<ExecEvent> = []
      const error = yield* Effect.flip(
        Stream.runForEach(client.exec({ machine: "box", argv: ["x"] }), (e) => Effect.sync(() => void seen.push(e)))
      )
      assert.deepStrictEqual(shown(seen), ["Started", "Stdout:a", "Stderr:b"])
      assert.strictEqual(error._tag, "RelayError")
      assert.strictEqual(error._tag === "RelayError" && error.reason, "Unavailable")
      assert.include(error.message, "the session ended before the command finished")
    })
  )

  it.scopedLive(
    "a program's loop of 1,200 execs on one client keeps its connection (no call is reset at Exit)",
    () =>
      Effect.gen(function* () {
        // Stopping at Exit used to cancel the call, resetting its HTTP/2 stream before the relay's end arrived; Node's
        // HTTP/2 server answers more than 1,000 resets in a burst with a GOAWAY, and the loop failed at ~1,300.
        const client = yield* relayAnswering([started, ExecEvent.Exit({ exitCode: 0, timedOut: false, durationMs: 1 })])
        for (let i = 0; i < 1_200; i++) {
          const events = yield* Stream.runCollect(client.exec({ machine: "box", argv: ["true"] }))
          assert.strictEqual(Chunk.size(events), 2)
        }
      }),
    60_000
  )
})
