import { AccessError } from "@cmdop/domain/AccessError"
import { MachineError } from "@cmdop/domain/MachineError"
import { RelayError } from "@cmdop/domain/RelayError"
import * as GrpcStatusError from "@cmdop/grpc/GrpcStatusError"
import * as ErrorCodec from "@cmdop/protocol/ErrorCodec"
import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import * as Arbitrary from "effect/Arbitrary"
import * as FastCheck from "effect/FastCheck"
import { plain } from "./plain.js"

/** Numbers JSON carries as they are (the error travels as JSON). */
const jsonNumber = (n: number | undefined) => n === undefined || (Number.isFinite(n) && !Object.is(n, -0))

const errors = FastCheck.oneof(
  Arbitrary.make(MachineError).filter(
    (e) => jsonNumber(e.now) && e.candidates.every((c) => jsonNumber(c.lastHeartbeatAt))
  ),
  Arbitrary.make(AccessError),
  Arbitrary.make(RelayError)
)

/** The status as the client sees it: trailing metadata through grpc-js's `Metadata` and back. */
const overTheWire = (e: GrpcStatusError.GrpcStatusError) =>
  new GrpcStatusError.GrpcStatusError({
    code: e.code,
    details: e.details,
    metadata: GrpcStatusError.metadataToRecord(GrpcStatusError.recordToMetadata(e.metadata))
  })

describe("ErrorCodec", () => {
  it.prop("every relay call error round-trips through a gRPC status", [errors], ([error]) => {
    const back = ErrorCodec.fromStatus(overTheWire(ErrorCodec.toStatus(error)), "elsewhere")
    assert.strictEqual(back.constructor, error.constructor)
    assert.deepStrictEqual(plain(back), plain(error))
    assert.strictEqual(back.message, error.message)
  })

  it("each failure has its status code", () => {
    const code = (e: Parameters<typeof ErrorCodec.toStatus>[0]) => ErrorCodec.toStatus(e).code
    assert.strictEqual(
      code(new MachineError({ reason: "NotFound", query: "q", candidates: [] })),
      grpc.status.NOT_FOUND
    )
    assert.strictEqual(
      code(new MachineError({ reason: "Ambiguous", query: "q", candidates: [] })),
      grpc.status.FAILED_PRECONDITION
    )
    assert.strictEqual(
      code(new MachineError({ reason: "Offline", query: "q", candidates: [] })),
      grpc.status.UNAVAILABLE
    )
    assert.strictEqual(code(new AccessError({ reason: "Unauthenticated", detail: "" })), grpc.status.UNAUTHENTICATED)
    assert.strictEqual(code(new AccessError({ reason: "PermissionDenied", detail: "" })), grpc.status.PERMISSION_DENIED)
    const relay = (reason: RelayError["reason"]) => code(new RelayError({ reason, server: "s", detail: "" }))
    assert.strictEqual(relay("Timeout"), grpc.status.DEADLINE_EXCEEDED)
    assert.strictEqual(relay("InvalidRequest"), grpc.status.INVALID_ARGUMENT)
    assert.strictEqual(relay("Unavailable"), grpc.status.UNAVAILABLE)
    assert.strictEqual(relay("Internal"), grpc.status.INTERNAL)
    assert.strictEqual(relay("Protocol"), grpc.status.INTERNAL)
  })

  it("a status without a payload maps by its code", () => {
    const status = (code: grpc.status, details: string) => new GrpcStatusError.GrpcStatusError({ code, details })
    const refused = ErrorCodec.fromStatus(
      status(grpc.status.UNAVAILABLE, "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1"),
      "relay.example:1"
    )
    assert.deepStrictEqual(
      refused,
      new RelayError({
        reason: "Unavailable",
        server: "relay.example:1",
        detail: "connection refused",
        unreachable: true
      })
    )
    assert.match(
      refused.message,
      /^relay relay\.example:1 is unreachable: connection refused; is "cmdop relay serve" running/
    )
    // The relay's own Unavailable (its database, another node) says the relay answered: no "is it running?".
    const answered = new RelayError({
      reason: "Unavailable",
      server: "relay.example:1",
      detail: "its database could not check the credential now (connection refused)"
    })
    const through = ErrorCodec.fromStatus(ErrorCodec.toStatus(answered), "relay.example:1")
    assert.deepStrictEqual(through, answered)
    assert.strictEqual(
      through.message,
      "relay relay.example:1 cannot serve this now: its database could not check the credential now (connection refused)"
    )
    assert.deepStrictEqual(
      ErrorCodec.fromStatus(status(grpc.status.PERMISSION_DENIED, "no"), "s"),
      new AccessError({ reason: "PermissionDenied", detail: "no" })
    )
    assert.deepStrictEqual(
      ErrorCodec.fromStatus(status(grpc.status.UNIMPLEMENTED, "what"), "s"),
      new RelayError({ reason: "Protocol", server: "s", detail: "what" })
    )
  })
})
