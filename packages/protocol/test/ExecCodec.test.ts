import * as ExecCodec from "@cmdop/protocol/ExecCodec"
import * as Wire from "@cmdop/protocol/generated/cmdop/connect/v1/client"
import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as FastCheck from "effect/FastCheck"
import * as Schemas from "./clientSchemas.js"
import { plain, viaBytes } from "./plain.js"

const startBytes = viaBytes(Wire.ExecStart)
const eventBytes = viaBytes(Wire.ExecEvent)

/** An environment variable named `__proto__` does not survive the generated decoder (see AgentLinkCodec.test). */
const requests = Arbitrary.make(Schemas.ExecRequest).filter((r) => !Object.hasOwn(r.env, "__proto__"))

describe("ExecCodec", () => {
  it.prop(
    "every exec request round-trips through protobuf bytes",
    [requests, FastCheck.boolean()],
    ([request, withStdin]) => {
      const wire = startBytes(ExecCodec.startToWire(request, withStdin))
      assert.strictEqual(wire.stdin, withStdin)
      assert.deepStrictEqual(plain(ExecCodec.startFromWire(wire)), plain(request))
    }
  )

  it("an exec request without options reads back with their defaults", () => {
    const back = ExecCodec.startFromWire(startBytes(ExecCodec.startToWire({ machine: "m", argv: ["ls"] }, false)))
    assert.deepStrictEqual(plain(back), { machine: "m", argv: ["ls"], shell: false, timeoutMs: 0, env: {} })
  })

  it.prop("every exec event round-trips through protobuf bytes", [Arbitrary.make(Schemas.ExecEvent)], ([event]) => {
    assert.deepStrictEqual(plain(ExecCodec.eventFromWire(eventBytes(ExecCodec.eventToWire(event)))), plain(event))
  })

  it.prop("output bytes are not copied on the way out", [Arbitrary.make(Schemas.ExecEvent)], ([event]) => {
    const wire = ExecCodec.eventToWire(event)
    if (event._tag === "Stdout" || event._tag === "Stderr")
      assert.strictEqual(
        (wire.kind?.$case === "stdout" || wire.kind?.$case === "stderr") && wire.kind.value.buffer,
        event.data.buffer
      )
  })

  it("an event of an unknown kind reads as undefined", () => {
    assert.isUndefined(ExecCodec.eventFromWire({ kind: undefined }))
    assert.isUndefined(
      ExecCodec.eventFromWire({ kind: { $case: "started", value: { machine: undefined, sessionId: "s" } } })
    )
  })
})
