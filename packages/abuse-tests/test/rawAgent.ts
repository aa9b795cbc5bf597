/**
 * A misbehaving agent for the abuse suite: a bare grpc-js client of `AgentService.Connect` that sends whatever the
 * test tells it (a huge Hello, output beyond its window) and records what the relay sends back and how the stream
 * ended.
 */
import * as grpc from "@grpc/grpc-js"
import {
  AgentMessage,
  AgentServiceService,
  type Hello,
  type RelayMessage
} from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as Effect from "effect/Effect"
import { randomBytes, randomUUID } from "node:crypto"

export interface RawAgent {
  readonly write: (message: AgentMessage) => boolean
  readonly received: Array<RelayMessage>
  /** Resolves with the stream's final status (code and details) once it ended. */
  readonly ended: Promise<{ readonly code: number; readonly details: string }>
  /** Waits until the stream's write buffer drained. */
  readonly drained: () => Promise<void>
  readonly close: () => void
}

/** `Connect` taking messages or already-encoded bytes (so a huge message costs nothing while measuring). */
const Client = grpc.makeGenericClientConstructor(
  {
    ...AgentServiceService,
    connect: {
      ...AgentServiceService.connect,
      requestSerialize: (value: AgentMessage | Buffer): Buffer =>
        Buffer.isBuffer(value) ? value : Buffer.from(AgentMessage.encode(value).finish())
    }
  },
  "AgentService"
)

/** A message encoded ahead of time. */
export const encode = (message: AgentMessage): Buffer => Buffer.from(AgentMessage.encode(message).finish())

export const hello = (hostname: string, sessions = 0): AgentMessage => ({
  kind: {
    $case: "hello",
    value: {
      identity: {
        machineId: randomUUID(),
        machineSecret: randomBytes(32).toString("base64url"),
        hostname,
        name: hostname,
        os: "linux",
        agentVersion: "abuse"
      },
      window: 1 << 20,
      ptySessions: Array.from({ length: sessions }, (_, i) => ({
        sessionId: `s-${i}-${"x".repeat(36)}`,
        command: "bash -l",
        cols: 80,
        rows: 24,
        createdAt: 1,
        lastActivityAt: 1,
        outputOffset: 0,
        owner: "ck_abuse"
      }))
    } satisfies Hello
  }
})

/** Opens `Connect` with `key`, sends `first`, for the life of the scope. */
export const connect = (address: string, key: string, first: AgentMessage | Buffer) =>
  Effect.acquireRelease(
    Effect.sync((): RawAgent => {
      const client = new Client(address, grpc.credentials.createInsecure(), {
        "grpc.max_send_message_length": 64 * 1024 * 1024,
        "grpc.max_receive_message_length": 64 * 1024 * 1024
      })
      const metadata = new grpc.Metadata()
      metadata.set("authorization", `Bearer ${key}`)
      const call = (client as unknown as { connect: (m: grpc.Metadata) => grpc.ClientDuplexStream<any, any> }).connect(
        metadata
      )
      const received: Array<RelayMessage> = []
      call.on("data", (m: RelayMessage) => received.push(m))
      const ended = new Promise<{ code: number; details: string }>((resolve) => {
        call.on("status", (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }))
        call.on("error", () => {})
      })
      call.write(first)
      return {
        write: (m) => call.write(m),
        received,
        ended,
        drained: () => new Promise<void>((resolve) => call.once("drain", () => resolve())),
        close: () => {
          call.cancel()
          client.close()
        }
      }
    }),
    (agent) => Effect.sync(() => agent.close())
  )
