import * as Link from "@cmdop/domain/AgentLink"
import type { Machine } from "@cmdop/domain/Machine"
import * as AgentLinkCodec from "@cmdop/protocol/AgentLinkCodec"
import * as Wire from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Redacted from "effect/Redacted"
import { plain } from "./plain.js"

/** The wire carries a heartbeat time as a positive int64 (0 means "never", see MachineCodec's own law). */
const heartbeatFits = (m: Machine) =>
  m.lastHeartbeatAt === undefined || (Number.isSafeInteger(m.lastHeartbeatAt) && m.lastHeartbeatAt > 0)

const agentMessages = Arbitrary.make(Link.AgentMessage)
/**
 * The generated decoder assigns map entries onto a plain object, so an environment variable named `__proto__`
 * does not survive protobuf bytes (a limit of the generated code, not of the codec).
 */
const envFits = (spec: Link.SessionOpen["spec"]) => spec._tag !== "Exec" || !Object.hasOwn(spec.env, "__proto__")

const relayMessages = Arbitrary.make(Link.RelayMessage).filter(
  (m) => (m._tag !== "Welcome" || heartbeatFits(m.machine)) && (m._tag !== "SessionOpen" || envFits(m.spec))
)

const viaBytes = {
  agent: (w: Wire.AgentMessage) => Wire.AgentMessage.decode(Wire.AgentMessage.encode(w).finish()),
  relay: (w: Wire.RelayMessage) => Wire.RelayMessage.decode(Wire.RelayMessage.encode(w).finish())
}

describe("AgentLinkCodec", () => {
  it.prop("every agent message round-trips through the wire type", [agentMessages], ([m]) => {
    const back = AgentLinkCodec.agentMessageFromWire(AgentLinkCodec.agentMessageToWire(m))
    assert.deepStrictEqual(plain(back), plain(m))
  })

  it.prop("every agent message round-trips through protobuf bytes", [agentMessages], ([m]) => {
    const back = AgentLinkCodec.agentMessageFromWire(viaBytes.agent(AgentLinkCodec.agentMessageToWire(m)))
    assert.deepStrictEqual(plain(back), plain(m))
  })

  it.prop("every relay message round-trips through the wire type", [relayMessages], ([m]) => {
    const back = AgentLinkCodec.relayMessageFromWire(AgentLinkCodec.relayMessageToWire(m))
    assert.deepStrictEqual(plain(back), plain(m))
  })

  it.prop("every relay message round-trips through protobuf bytes", [relayMessages], ([m]) => {
    const back = AgentLinkCodec.relayMessageFromWire(viaBytes.relay(AgentLinkCodec.relayMessageToWire(m)))
    assert.deepStrictEqual(plain(back), plain(m))
  })

  it.prop("every machine identity round-trips, its secret included", [Arbitrary.make(Link.MachineIdentity)], ([i]) => {
    const back = AgentLinkCodec.identityFromWire(AgentLinkCodec.identityToWire(i))
    assert.deepStrictEqual(plain(back), plain(i))
    assert.strictEqual(Redacted.value(back.machineSecret), Redacted.value(i.machineSecret))
  })

  it.prop("payload bytes are never copied", [Arbitrary.make(Link.SessionOutput)], ([m]) => {
    const wire = AgentLinkCodec.agentMessageToWire(m)
    assert.strictEqual(wire.kind?.$case === "output" && wire.kind.value.data.buffer, m.data.buffer)
    const back = AgentLinkCodec.agentMessageFromWire(wire)
    assert.strictEqual(back?._tag === "SessionOutput" && back.data.buffer, m.data.buffer)
    assert.strictEqual(back?._tag === "SessionOutput" && back.data.byteOffset, m.data.byteOffset)
  })

  it("reads what it cannot understand as undefined", () => {
    assert.isUndefined(AgentLinkCodec.agentMessageFromWire({ kind: undefined }))
    assert.isUndefined(AgentLinkCodec.relayMessageFromWire({ kind: undefined }))
    assert.isUndefined(
      AgentLinkCodec.agentMessageFromWire({
        kind: { $case: "hello", value: { identity: undefined, window: 0, ptySessions: [] } }
      })
    )
    assert.isUndefined(
      AgentLinkCodec.relayMessageFromWire({
        kind: {
          $case: "welcome",
          value: { machine: undefined, workspaceName: "", heartbeatSeconds: 0, window: 0, relayAddresses: [] }
        }
      })
    )
    assert.isUndefined(
      AgentLinkCodec.relayMessageFromWire({ kind: { $case: "open", value: { sessionId: "s", caller: undefined } } })
    )
  })

  it("reads an unspecified pipe as stdout and a caller of an unknown kind as absent", () => {
    const output = AgentLinkCodec.agentMessageFromWire({
      kind: {
        $case: "output",
        value: { sessionId: "s", pipe: Wire.Pipe.PIPE_UNSPECIFIED, data: Buffer.from("x"), offset: 0 }
      }
    })
    assert.strictEqual(output?._tag === "SessionOutput" && output.pipe, "stdout")
    const input = AgentLinkCodec.relayMessageFromWire({
      kind: {
        $case: "input",
        value: {
          sessionId: "s",
          data: Buffer.alloc(0),
          eof: true,
          caller: { kind: "robot", principal: "r", shareId: "" }
        }
      }
    })
    assert.deepStrictEqual(input, { _tag: "SessionInput", sessionId: "s", data: new Uint8Array(0), eof: true })
  })
})
