import { Machine } from "@cmdop/domain/Machine"
import * as Wire from "@cmdop/protocol/generated/cmdop/connect/v1/common"
import * as MachineCodec from "@cmdop/protocol/MachineCodec"
import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Schemas from "./clientSchemas.js"
import { plain, viaBytes } from "./plain.js"

const bytes = viaBytes(Wire.MachineInfo)

describe("MachineCodec", () => {
  it.prop("every machine round-trips through protobuf bytes", [Arbitrary.make(Schemas.WireMachine)], ([m]) => {
    const back = MachineCodec.fromWire(bytes(MachineCodec.toWire(m)))
    assert.instanceOf(back, Machine)
    assert.deepStrictEqual(plain(back), plain(m))
  })

  it.prop("a machine that never sent a heartbeat reads back without one", [Arbitrary.make(Machine)], ([m]) => {
    const never = new Machine({ ...m, lastHeartbeatAt: undefined })
    const back = MachineCodec.fromWire(MachineCodec.toWire(never))
    assert.strictEqual(MachineCodec.toWire(never).lastHeartbeatAt, 0)
    assert.isUndefined(back.lastHeartbeatAt)
  })
})
