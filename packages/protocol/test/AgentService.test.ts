import * as Link from "@cmdop/domain/AgentLink"
import type { Machine } from "@cmdop/domain/Machine"
import * as AgentLinkCodec from "@cmdop/protocol/AgentLinkCodec"
import * as AgentService from "@cmdop/protocol/AgentService"
import * as Wire from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"
import * as Schemas from "./clientSchemas.js"
import { plain, viaRequest, viaResponse } from "./plain.js"

const { connect, register } = AgentService.definition

/** See AgentLinkCodec.test: a heartbeat time the wire carries, and no `__proto__` environment variable. */
const heartbeatFits = (m: Machine) =>
  m.lastHeartbeatAt === undefined || (Number.isSafeInteger(m.lastHeartbeatAt) && m.lastHeartbeatAt > 0)
const envFits = (spec: Link.ExecSpec | Link.PtySpec | Link.AttachSpec) =>
  spec._tag !== "Exec" || !Object.hasOwn(spec.env, "__proto__")

const agentMessages = Arbitrary.make(Link.AgentMessage)
const relayMessages = Arbitrary.make(Link.RelayMessage).filter(
  (m) => (m._tag !== "Welcome" || heartbeatFits(m.machine)) && (m._tag !== "SessionOpen" || envFits(m.spec))
)
const unknownOpens = FastCheck.string({ minLength: 1 }).map((sessionId): AgentService.UnknownOpen => ({
  _tag: "UnknownOpen",
  sessionId
}))
const machines = Arbitrary.make(Schemas.WireMachine)

describe("AgentService.definition", () => {
  it.prop("every agent message round-trips through connect's request bytes", [agentMessages], ([m]) => {
    assert.deepStrictEqual(plain(viaRequest(connect)(m)), plain(m))
  })

  it.prop(
    "every relay message, and an open the agent cannot run, round-trips through connect's response bytes",
    [FastCheck.oneof(relayMessages, unknownOpens)],
    ([m]) => {
      assert.deepStrictEqual(plain(viaResponse(connect)(m)), plain(m))
    }
  )

  it.prop("connect's bytes are the generated definition's bytes", [agentMessages, relayMessages], ([up, down]) => {
    assert.deepStrictEqual(
      connect.requestSerialize(up),
      Wire.AgentServiceService.connect.requestSerialize(AgentLinkCodec.agentMessageToWire(up))
    )
    assert.deepStrictEqual(
      connect.responseSerialize(down),
      Wire.AgentServiceService.connect.responseSerialize(AgentLinkCodec.relayMessageToWire(down))
    )
  })

  it.prop(
    "register round-trips an identity, its secret included, and the registered machine",
    [Arbitrary.make(Link.MachineIdentity), machines, FastCheck.string()],
    ([identity, machine, workspaceName]) => {
      const request = viaRequest(register)({ identity })
      assert.deepStrictEqual(plain(request), plain({ identity }))
      assert.strictEqual(
        request.identity && Redacted.value(request.identity.machineSecret),
        Redacted.value(identity.machineSecret)
      )
      const response = { machine, workspaceName }
      assert.deepStrictEqual(plain(viaResponse(register)(response)), plain(response))
    }
  )

  it("register keeps a missing identity or machine missing", () => {
    assert.deepStrictEqual(viaRequest(register)({}), {})
    assert.deepStrictEqual(viaResponse(register)({ workspaceName: "w" }), { workspaceName: "w" })
  })

  it("reads what the agent link codec cannot read as Unreadable, and an open of an unknown kind as UnknownOpen", () => {
    const agent = (w: Wire.AgentMessage) =>
      connect.requestDeserialize(Wire.AgentServiceService.connect.requestSerialize(w))
    const relay = (w: Wire.RelayMessage) =>
      connect.responseDeserialize(Wire.AgentServiceService.connect.responseSerialize(w))
    assert.deepStrictEqual(agent({ kind: undefined }), { _tag: "Unreadable" })
    assert.deepStrictEqual(
      agent({ kind: { $case: "hello", value: { identity: undefined, window: 0, ptySessions: [] } } }),
      { _tag: "Unreadable" }
    )
    assert.deepStrictEqual(relay({ kind: undefined }), { _tag: "Unreadable" })
    assert.deepStrictEqual(
      relay({
        kind: {
          $case: "welcome",
          value: { machine: undefined, workspaceName: "", heartbeatSeconds: 0, window: 0, relayAddresses: [] }
        }
      }),
      { _tag: "Unreadable" }
    )
    assert.deepStrictEqual(relay({ kind: { $case: "open", value: { sessionId: "s", caller: undefined } } }), {
      _tag: "UnknownOpen",
      sessionId: "s"
    })
    assert.deepStrictEqual(relay({ kind: { $case: "open", value: { sessionId: "", caller: undefined } } }), {
      _tag: "Unreadable"
    })
    assert.deepStrictEqual(viaRequest(connect)({ _tag: "Unreadable" }), { _tag: "Unreadable" })
    assert.deepStrictEqual(viaResponse(connect)({ _tag: "Unreadable" }), { _tag: "Unreadable" })
  })
})
