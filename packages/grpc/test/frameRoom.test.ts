import * as grpc from "@grpc/grpc-js"
import { assert, describe, it } from "@effect/vitest"
import * as GrpcFrameRoom from "../src/GrpcFrameRoom.js"

/**
 * grpc-js as patched (patches/@grpc__grpc-js@1.14.7.patch): a serialized message marked with `GrpcFrameRoom.markRoom`
 * is framed in the 5 bytes in front of it and sent as it is, both by a client (its compression filter) and by a
 * server (its response serializer); an unmarked one is copied as before.
 */

const SENTINEL = 0xaa

/** The message `text` in a buffer with 16 sentinel bytes in front of it, marked when `room`. */
const withRoom = (text: string, room: boolean) => {
  const payload = Buffer.from(text)
  const all = Buffer.alloc(16 + payload.length, SENTINEL)
  payload.copy(all, 16)
  const message = all.subarray(16)
  if (room) GrpcFrameRoom.markRoom(message)
  return { all, message }
}

/** Whether grpc-js wrote the frame header of `message` (flag 0, big-endian length) into the bytes in front of it. */
const framedInPlace = (all: Buffer, message: Buffer) =>
  all[16 - 5] === 0 && all.readUInt32BE(16 - 4) === message.length && all[16 - 6] === SENTINEL

const written = (room: boolean) =>
  new Promise<{
    readonly sent: ReturnType<typeof withRoom>
    readonly reply: ReturnType<typeof withRoom>
    readonly serverGot: string
    readonly clientGot: string
  }>((resolve, reject) => {
    const sent = withRoom("request from the client", room)
    const reply = withRoom("reply from the server", room)
    let serverGot = ""
    const identity = (b: Buffer) => b
    const definition = {
      chat: {
        path: "/test.FrameRoom/Chat",
        requestStream: true,
        responseStream: true,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity
      }
    }
    const server = new grpc.Server()
    server.addService(definition, {
      chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.on("data", (m: Buffer) => {
          serverGot = m.toString()
          call.write(reply.message, () => call.end())
        })
      }
    })
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error) return reject(error)
      const Client = grpc.makeGenericClientConstructor(definition, "FrameRoom")
      const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
      const call = (client as unknown as { chat: () => grpc.ClientDuplexStream<Buffer, Buffer> }).chat()
      let clientGot = ""
      call.on("data", (m: Buffer) => {
        clientGot = m.toString()
      })
      call.on("error", reject)
      call.on("end", () => {
        client.close()
        server.forceShutdown()
        resolve({ sent, reply, serverGot, clientGot })
      })
      call.write(sent.message, () => call.end())
    })
  })

describe("GrpcFrameRoom", () => {
  it("a marked message is framed in the room in front of it, both ways, and arrives intact", async () => {
    const { clientGot, reply, sent, serverGot } = await written(true)
    assert.strictEqual(serverGot, "request from the client")
    assert.strictEqual(clientGot, "reply from the server")
    assert.isTrue(framedInPlace(sent.all, sent.message), "the client framed its request in place")
    assert.isTrue(framedInPlace(reply.all, reply.message), "the server framed its reply in place")
    assert.isFalse(GrpcFrameRoom.hasRoom(sent.message), "a mark is used once")
    assert.isFalse(GrpcFrameRoom.hasRoom(reply.message))
  })

  it("an unmarked message is copied: the bytes in front of it stay as they were", async () => {
    const { clientGot, reply, sent, serverGot } = await written(false)
    assert.strictEqual(serverGot, "request from the client")
    assert.strictEqual(clientGot, "reply from the server")
    for (const { all } of [sent, reply]) assert.deepStrictEqual([...all.subarray(0, 16)], Array(16).fill(SENTINEL))
  })

  it("a message at the very start of its buffer is never marked", () => {
    const message = new Uint8Array(new ArrayBuffer(8))
    GrpcFrameRoom.markRoom(message)
    assert.isFalse(GrpcFrameRoom.hasRoom(message))
  })
})
