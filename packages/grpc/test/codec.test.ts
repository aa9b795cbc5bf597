import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Stream from "effect/Stream"
import * as GrpcClient from "../src/GrpcClient.js"
import * as GrpcCodec from "../src/GrpcCodec.js"
import * as GrpcServer from "../src/GrpcServer.js"
import { TestService } from "./fixtures/TestService.js"

const Inner = { id: [1, "uint32"], tag: [2, "string"] } as const
const Frame = {
  session: [1, "string"],
  pipe: [2, "int32"],
  data: [3, "bytes"],
  offset: [4, "uint64"],
  last: [5, "bool"],
  inner: [6, { message: Inner }]
} as const
const frame = GrpcCodec.view(Frame)

describe("GrpcCodec.view", () => {
  it("encodes the protobuf wire format, byte for byte", () => {
    const bytes = frame.serialize({
      session: "a",
      pipe: -1,
      data: Buffer.from([1, 2]),
      offset: 300,
      last: true,
      inner: { id: 0, tag: "" }
    })
    const expected = [
      [0x0a, 0x01, 0x61],
      [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
      [0x1a, 0x02, 0x01, 0x02],
      [0x20, 0xac, 0x02],
      [0x28, 0x01],
      [0x32, 0x00]
    ].flat()
    assert.deepStrictEqual([...bytes], expected)
  })

  it("decodes bytes fields as views into the received buffer, skipping unknown fields", () => {
    const payload = Buffer.alloc(4096, 9)
    const encoded = frame.serialize({
      session: "s-1",
      pipe: 2,
      data: payload,
      offset: 0,
      last: false,
      inner: undefined
    })
    // An unknown varint (field 9) and an unknown fixed64 (field 10) from a newer peer.
    const received = Buffer.concat([encoded, Buffer.from([0x48, 0x05, 0x51, 1, 2, 3, 4, 5, 6, 7, 8])])
    const decoded = frame.deserialize(received)
    assert.strictEqual(decoded.session, "s-1")
    assert.strictEqual(decoded.pipe, 2)
    assert.strictEqual(decoded.inner, undefined)
    assert.isTrue(decoded.data.equals(payload))
    assert.strictEqual(decoded.data.buffer, received.buffer)
    assert.strictEqual(decoded.data.byteOffset, received.byteOffset + encoded.length - payload.length)
  })

  it.prop(
    "round-trips every value",
    {
      session: FastCheck.string(),
      pipe: FastCheck.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      data: FastCheck.uint8Array({ maxLength: 300 }),
      offset: FastCheck.maxSafeNat(),
      last: FastCheck.boolean(),
      inner: FastCheck.option(FastCheck.record({ id: FastCheck.nat(), tag: FastCheck.string() }), { nil: undefined })
    },
    (value) => {
      const decoded = frame.deserialize(frame.serialize({ ...value, data: Buffer.from(value.data) }))
      assert.deepStrictEqual({ ...decoded, data: [...decoded.data] }, { ...value, data: [...value.data] })
    }
  )

  it("rejects truncated input", () => {
    const encoded = frame.serialize({
      session: "x",
      pipe: 0,
      data: Buffer.alloc(10),
      offset: 0,
      last: false,
      inner: undefined
    })
    assert.throws(() => frame.deserialize(encoded.subarray(0, encoded.length - 1)), /truncated/)
  })
})

/** `chat` served with raw bytes both ways: the handler sees and returns the Buffers grpc-js handles. */
const RawChat = { chat: GrpcCodec.method(TestService.chat, { request: GrpcCodec.raw, response: GrpcCodec.raw }) }
/** `chat` called with a `view` codec both ways. */
const FrameChat = { chat: GrpcCodec.method(TestService.chat, { request: frame, response: frame }) }

const rawEchoServer = GrpcServer.make({
  host: "127.0.0.1",
  services: [
    GrpcServer.service(RawChat, {
      chat: (requests) =>
        Stream.map(requests, (bytes) => {
          if (!Buffer.isBuffer(bytes)) throw new Error("not a Buffer")
          return bytes
        })
    })
  ],
  shutdownTimeout: "200 millis"
})

describe("GrpcCodec.method", () => {
  it.scopedLive("a raw server answers a JSON client: the wire format is the same whatever each end decodes", () =>
    Effect.gen(function* () {
      const server = yield* rawEchoServer
      const client = yield* GrpcClient.make(TestService, { address: server.address })
      const replies = yield* Stream.runCollect(client.bidi("chat", Stream.make({ text: "a" }, { text: "é" })))
      assert.deepStrictEqual(Chunk.toReadonlyArray(replies), [{ text: "a" }, { text: "é" }])
    })
  )

  // 1 MiB: two messages of 4 MiB (over the 8 MiB flow-control window) in one bidi echo sometimes stall, with this
  // bridge as before it, and with plain grpc-js reading in paused mode: see bench/grpc-stall-repro.mjs.
  it.scopedLive("a view client sends and receives 1 MiB payloads through a raw server", () =>
    Effect.gen(function* () {
      const server = yield* rawEchoServer
      const client = yield* GrpcClient.make(FrameChat, { address: server.address })
      const data = Buffer.alloc(1024 * 1024)
      for (let i = 0; i < data.length; i += 4096) data[i] = i % 251
      const sent = { session: "s", pipe: 1, data, offset: 7, last: true, inner: { id: 3, tag: "t" } }
      const replies = yield* Stream.runCollect(client.bidi("chat", Stream.make(sent, sent)))
      assert.strictEqual(Chunk.size(replies), 2)
      for (const reply of replies) {
        assert.isTrue(reply.data.equals(data))
        assert.deepStrictEqual({ ...reply, data: null }, { ...sent, data: null })
      }
    })
  )
})
