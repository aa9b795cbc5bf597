/**
 * Bare grpc-js calls of `ClientService.Exec` for the abuse suite: a stream that sends nothing (or only its start)
 * and may stop reading, with its final status recorded.
 */
import * as grpc from "@grpc/grpc-js"
import { ClientServiceService, type ExecRequest } from "@cmdop/protocol/generated/cmdop/connect/v1/client"
import * as Effect from "effect/Effect"

export interface RawExec {
  readonly call: grpc.ClientDuplexStream<ExecRequest, unknown>
  readonly ended: Promise<{ readonly code: number; readonly details: string }>
  /** The time the stream ended (`performance.now()`), once it did. */
  endedAt?: number
}

const Client = grpc.makeGenericClientConstructor(ClientServiceService, "ClientService")

/** One channel for many calls, closed with the scope. */
export const channel = (address: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Client(address, grpc.credentials.createInsecure(), {})),
    (client) => Effect.sync(() => client.close())
  )

/** Opens an exec stream with `key`; `start` is sent when given. */
export const exec = (client: grpc.Client, key: string, start?: ExecRequest): RawExec => {
  const metadata = new grpc.Metadata()
  metadata.set("authorization", `Bearer ${key}`)
  const call = (
    client as unknown as { exec: (m: grpc.Metadata) => grpc.ClientDuplexStream<ExecRequest, unknown> }
  ).exec(metadata)
  const raw: RawExec = {
    call,
    ended: new Promise((resolve) => {
      call.on("status", (s: grpc.StatusObject) => {
        raw.endedAt = performance.now()
        resolve({ code: s.code, details: s.details })
      })
      call.on("error", () => {})
      call.on("data", () => {})
    })
  }
  if (start !== undefined) call.write(start)
  return raw
}
