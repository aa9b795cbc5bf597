import * as GrpcFrameRoom from "@cmdop/grpc/GrpcFrameRoom"
import * as ClientService from "@cmdop/protocol/ClientService"
import * as PeerService from "@cmdop/protocol/PeerService"
import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"
import * as Schemas from "./clientSchemas.js"
import { plain, viaRequest, viaResponse } from "./plain.js"

const D = PeerService.definition

const nonEmpty = FastCheck.string({ minLength: 1 })

/** A caller as a node authenticated it: every optional part present or absent (empty strings and 0 mean absent). */
const callers: FastCheck.Arbitrary<PeerService.ForwardedCaller> = FastCheck.record(
  {
    workspaceId: FastCheck.string(),
    workspaceName: FastCheck.string(),
    kind: FastCheck.constantFrom("key" as const, "user" as const, "guest" as const),
    principal: FastCheck.string(),
    credential: nonEmpty.map(Redacted.make),
    machineId: nonEmpty,
    shareId: nonEmpty,
    machineHostname: nonEmpty,
    expiresAt: FastCheck.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    sessionId: nonEmpty,
    role: FastCheck.constantFrom("owner" as const, "member" as const, "viewer" as const),
    userId: nonEmpty
  },
  { requiredKeys: ["workspaceId", "workspaceName", "kind", "principal", "credential"] }
)
const origins = FastCheck.record({ caller: callers, fromNode: FastCheck.string() })

const execRequests = Arbitrary.make(Schemas.ExecRequest).filter((r) => !Object.hasOwn(r.env, "__proto__"))

const execMessages: FastCheck.Arbitrary<PeerService.ExecMessage> = FastCheck.oneof(
  FastCheck.record({ origin: origins, request: execRequests, stdin: FastCheck.boolean() }).map(
    ({ origin, ...s }): PeerService.ExecMessage => ({ _tag: "Start", ...origin, ...s })
  ),
  FastCheck.uint8Array().map((data): PeerService.ExecMessage => ({ _tag: "Stdin", data })),
  FastCheck.constant<PeerService.ExecMessage>({ _tag: "Eof" }),
  FastCheck.string().map((signal): PeerService.ExecMessage => ({ _tag: "Signal", signal })),
  FastCheck.constant<PeerService.ExecMessage>(PeerService.cancel),
  FastCheck.constant<PeerService.ExecMessage>({ _tag: "Unreadable" })
)

const attachMessages: FastCheck.Arbitrary<PeerService.AttachMessage> = FastCheck.oneof(
  FastCheck.record({ origin: origins, request: Arbitrary.make(Schemas.AttachRequest) }).map(
    ({ origin, request }): PeerService.AttachMessage => ({ _tag: "Start", ...origin, request })
  ),
  Arbitrary.make(Schemas.AttachInput),
  FastCheck.constant<PeerService.AttachMessage>(PeerService.cancel),
  FastCheck.constant<PeerService.AttachMessage>({ _tag: "Unreadable" })
)

const same = (a: unknown, b: unknown) => assert.deepStrictEqual(plain(a), plain(b))
const unreadable = FastCheck.constant({ _tag: "Unreadable" } as const)

describe("PeerService.definition", () => {
  it.prop("every forwarded exec message round-trips, its caller included", [execMessages], ([m]) => {
    same(viaRequest(D.exec)(m), m)
  })

  it.prop("every forwarded attach message round-trips, its caller included", [attachMessages], ([m]) => {
    same(viaRequest(D.attach)(m), m)
  })

  it("a Cancel reaches a node that does not know it as an unreadable message (which it ignores)", () => {
    // Such a node decodes with a message without the `cancel` kind: the client's, whose kinds these repeat.
    for (const [peer, client] of [
      [D.exec, ClientService.definition.exec],
      [D.attach, ClientService.definition.attach]
    ] as const) {
      const bytes = (peer.requestSerialize as (m: unknown) => Buffer)(PeerService.cancel)
      assert.isAbove(bytes.length, 0)
      assert.deepStrictEqual((client.requestDeserialize as (b: Buffer) => unknown)(bytes), { _tag: "Unreadable" })
    }
  })

  it.prop("listSessions round-trips its caller and machine", [origins, FastCheck.string()], ([origin, machine]) => {
    const request: PeerService.ListSessionsRequest = { _tag: "ListSessions", ...origin, machine }
    same(viaRequest(D.listSessions)(request), request)
  })

  it.prop(
    "answers are the client's messages: exec and attach events and session lists round-trip",
    [
      FastCheck.oneof(Arbitrary.make(Schemas.ExecEvent), unreadable),
      FastCheck.oneof(Arbitrary.make(Schemas.AttachEvent), unreadable),
      FastCheck.array(Arbitrary.make(Schemas.PtySession))
    ],
    ([exec, attach, sessions]) => {
      same(viaResponse(D.exec)(exec), exec)
      same(viaResponse(D.attach)(attach), attach)
      same(viaResponse(D.listSessions)({ sessions }), { sessions })
    }
  )

  it.prop(
    "a forwarding node passes answers on as it got them: the same bytes to its client, not re-encoded",
    [Arbitrary.make(Schemas.ExecEvent), Arbitrary.make(Schemas.AttachEvent)],
    ([exec, attach]) => {
      const C = ClientService.definition
      for (const [peer, client, event] of [
        [D.exec, C.exec, exec],
        [D.attach, C.attach, attach]
      ] as const) {
        const received = (peer.responseSerialize as (e: unknown) => Buffer)(event)
        const decoded = (peer.responseDeserialize as (b: Buffer) => object)(received)
        const sent = (client.responseSerialize as (e: unknown) => Buffer)(decoded)
        assert.strictEqual(sent, received, "the received buffer itself goes on")
        // A copy of the value is a new value: encoded afresh, to the same message.
        const copy = (client.responseSerialize as (e: unknown) => Buffer)({ ...decoded })
        assert.notStrictEqual(copy, received)
        assert.deepStrictEqual(Buffer.from(copy), Buffer.from(received))
      }
    }
  )

  it("an answer passed on leaves room for grpc-js to frame it where it arrived (behind its old frame header)", () => {
    const C = ClientService.definition
    const event = { _tag: "Stdout", data: Buffer.from("forwarded output") }
    const wire = (D.exec.responseSerialize as (e: unknown) => Buffer)(event)
    // As grpc-js hands a message over: a view of its framed buffer, right behind the 5-byte header.
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, wire.length]), wire])
    const decoded = (D.exec.responseDeserialize as (b: Buffer) => object)(framed.subarray(5))
    const sent = (C.exec.responseSerialize as (e: unknown) => Buffer)(decoded)
    assert.strictEqual(sent.buffer, framed.buffer)
    assert.isTrue(GrpcFrameRoom.hasRoom(sent))
    // A value that was not received goes through the encoder, with no room claimed in front of it.
    assert.isFalse(GrpcFrameRoom.hasRoom((C.exec.responseSerialize as (e: unknown) => Buffer)({ ...decoded })))
  })

  it("a start whose caller has an unknown kind, role or no credential is unreadable (the peer refuses it)", () => {
    const caller: PeerService.ForwardedCaller = {
      workspaceId: "w",
      workspaceName: "acme",
      kind: "key",
      principal: "ck_live_abcd",
      credential: Redacted.make("ck_live_abcdef")
    }
    const start = (c: PeerService.ForwardedCaller): PeerService.ExecMessage => ({
      _tag: "Start",
      caller: c,
      fromNode: "n1",
      request: { machine: "box", argv: ["true"], env: {} },
      stdin: false
    })
    assert.strictEqual(viaRequest(D.exec)(start(caller))._tag, "Start")
    assert.strictEqual(viaRequest(D.exec)(start({ ...caller, kind: "robot" as "key" }))._tag, "Unreadable")
    assert.strictEqual(viaRequest(D.exec)(start({ ...caller, role: "admin" as "owner" }))._tag, "Unreadable")
    assert.strictEqual(viaRequest(D.exec)(start({ ...caller, credential: Redacted.make("") }))._tag, "Unreadable")
  })
})
