import * as AttachCodec from "@cmdop/protocol/AttachCodec"
import * as Wire from "@cmdop/protocol/generated/cmdop/connect/v1/client"
import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Schemas from "./clientSchemas.js"
import { plain, viaBytes } from "./plain.js"

const requestBytes = viaBytes(Wire.AttachRequest)
const eventBytes = viaBytes(Wire.AttachEvent)
const sessionBytes = viaBytes(Wire.PtySession)

describe("AttachCodec", () => {
  it.prop("every attach request round-trips through protobuf bytes", [Arbitrary.make(Schemas.AttachRequest)], ([r]) => {
    const wire = requestBytes(AttachCodec.startToWire(r))
    assert.strictEqual(wire.kind?.$case, "start")
    if (wire.kind?.$case === "start")
      assert.deepStrictEqual(plain(AttachCodec.startFromWire(wire.kind.value)), plain(r))
  })

  it("a start without a size reads as 80×24", () => {
    const start = { machine: "m", sessionId: "", size: undefined, term: "", command: [], resumeFrom: 0, resume: false }
    assert.deepStrictEqual(AttachCodec.startFromWire(start), { machine: "m", cols: 80, rows: 24 })
  })

  it.prop("every attach input round-trips through protobuf bytes", [Arbitrary.make(Schemas.AttachInput)], ([input]) => {
    assert.deepStrictEqual(plain(AttachCodec.inputFromWire(requestBytes(AttachCodec.inputToWire(input)))), plain(input))
  })

  it.prop("every attach event round-trips through protobuf bytes", [Arbitrary.make(Schemas.AttachEvent)], ([event]) => {
    assert.deepStrictEqual(plain(AttachCodec.eventFromWire(eventBytes(AttachCodec.eventToWire(event)))), plain(event))
  })

  it.prop("every session listing round-trips through protobuf bytes", [Arbitrary.make(Schemas.PtySession)], ([s]) => {
    assert.deepStrictEqual(plain(AttachCodec.sessionFromWire(sessionBytes(AttachCodec.sessionToWire(s)))), plain(s))
  })

  it("a second start or an unknown kind is not input; an unknown event reads as undefined", () => {
    const start = AttachCodec.startToWire({ machine: "m", cols: 1, rows: 1 })
    assert.isUndefined(AttachCodec.inputFromWire(start))
    assert.isUndefined(AttachCodec.inputFromWire({ kind: undefined }))
    assert.isUndefined(AttachCodec.eventFromWire({ kind: undefined }))
  })
})
