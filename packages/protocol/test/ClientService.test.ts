import * as ClientService from "@cmdop/protocol/ClientService"
import * as Wire from "@cmdop/protocol/generated/cmdop/connect/v1/client"
import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as FastCheck from "effect/FastCheck"
import * as Schemas from "./clientSchemas.js"
import { plain, viaRequest, viaResponse } from "./plain.js"

const D = ClientService.definition

const machines = Arbitrary.make(Schemas.WireMachine)
/** The wire does not carry a share link's workspace; a link read back has none. */
const links = Arbitrary.make(Schemas.ShareLink).map((l) => Schemas.toShareLink({ ...l, workspaceId: "" }))
/** An environment variable named `__proto__` does not survive the generated decoder (see AgentLinkCodec.test). */
const execRequests = Arbitrary.make(Schemas.ExecRequest).filter((r) => !Object.hasOwn(r.env, "__proto__"))
const bytes = FastCheck.uint8Array()

const execMessages: FastCheck.Arbitrary<ClientService.ExecMessage> = FastCheck.oneof(
  FastCheck.record({ request: execRequests, stdin: FastCheck.boolean() }).map((s): ClientService.ExecMessage => ({
    _tag: "Start",
    ...s
  })),
  bytes.map((data): ClientService.ExecMessage => ({ _tag: "Stdin", data })),
  FastCheck.constant<ClientService.ExecMessage>({ _tag: "Eof" }),
  FastCheck.string().map((signal): ClientService.ExecMessage => ({ _tag: "Signal", signal })),
  FastCheck.constant<ClientService.ExecMessage>({ _tag: "Unreadable" })
)

const attachMessages: FastCheck.Arbitrary<ClientService.AttachMessage> = FastCheck.oneof(
  Arbitrary.make(Schemas.AttachRequest).map((request): ClientService.AttachMessage => ({ _tag: "Start", request })),
  Arbitrary.make(Schemas.AttachInput),
  FastCheck.constant<ClientService.AttachMessage>({ _tag: "Unreadable" })
)

const unreadable = FastCheck.constant({ _tag: "Unreadable" } as const)

const same = (a: unknown, b: unknown) => assert.deepStrictEqual(plain(a), plain(b))

describe("ClientService.definition", () => {
  it.prop("whoAmI round-trips the principal", [Arbitrary.make(Schemas.Principal)], ([p]) => {
    assert.deepStrictEqual(viaRequest(D.whoAmI)({}), {})
    same(viaResponse(D.whoAmI)(p), p)
  })

  it.prop(
    "listMachines and resolveMachine round-trip their requests and machines",
    [FastCheck.boolean(), FastCheck.array(machines), FastCheck.integer({ min: 0 }), FastCheck.string()],
    ([onlineOnly, list, now, query]) => {
      same(viaRequest(D.listMachines)({ onlineOnly }), { onlineOnly })
      same(viaResponse(D.listMachines)({ machines: list, now }), { machines: list, now })
      same(viaRequest(D.resolveMachine)({ query }), { query })
      for (const m of list) same(viaResponse(D.resolveMachine)(m), m)
    }
  )

  it.prop("every exec message round-trips", [execMessages], ([m]) => {
    same(viaRequest(D.exec)(m), m)
  })

  it.prop("every exec event round-trips", [FastCheck.oneof(Arbitrary.make(Schemas.ExecEvent), unreadable)], ([e]) => {
    same(viaResponse(D.exec)(e), e)
  })

  it.prop("every attach message round-trips", [attachMessages], ([m]) => {
    same(viaRequest(D.attach)(m), m)
  })

  it.prop(
    "every attach event round-trips",
    [FastCheck.oneof(Arbitrary.make(Schemas.AttachEvent), unreadable)],
    ([e]) => {
      same(viaResponse(D.attach)(e), e)
    }
  )

  it.prop(
    "listSessions round-trips the machine and its sessions",
    [FastCheck.string(), machines, FastCheck.array(Arbitrary.make(Schemas.PtySession))],
    ([query, machine, sessions]) => {
      same(viaRequest(D.listSessions)({ machine: query }), { machine: query })
      same(viaResponse(D.listSessions)({ machine, sessions }), { machine, sessions })
      same(viaResponse(D.listSessions)({ sessions }), { sessions })
    }
  )

  it.prop(
    "share calls round-trip their requests, links, url and token",
    [
      FastCheck.string(),
      FastCheck.nat(),
      FastCheck.option(FastCheck.string({ minLength: 1 }), { nil: undefined }),
      links,
      FastCheck.array(links, { maxLength: 3 }),
      FastCheck.string(),
      FastCheck.string(),
      FastCheck.option(FastCheck.integer({ min: 1, max: 0xffff_ffff }), { nil: undefined }),
      FastCheck.option(FastCheck.string({ minLength: 1 }), { nil: undefined })
    ],
    ([machine, ttlSeconds, only, link, list, url, token, limit, cursor]) => {
      same(viaRequest(D.createShare)({ machine, ttlSeconds }), { machine, ttlSeconds })
      same(viaResponse(D.createShare)({ link, url, token }), { link, url, token })
      const filter = only === undefined ? {} : { machine: only }
      same(viaRequest(D.listShares)(filter), filter)
      // A page: its size and cursor travel in the request, the next cursor in the answer.
      const page = { ...(limit === undefined ? {} : { limit }), ...(cursor === undefined ? {} : { after: cursor }) }
      const paged = limit === undefined && cursor === undefined ? filter : { ...filter, page }
      same(viaRequest(D.listShares)(paged), paged)
      same(viaResponse(D.listShares)({ links: list }), { links: list })
      const next = cursor === undefined ? {} : { next: cursor }
      same(viaResponse(D.listShares)({ links: list, ...next }), { links: list, ...next })
      same(viaRequest(D.revokeShare)({ id: link.id }), { id: link.id })
      same(viaResponse(D.revokeShare)(link), link)
    }
  )

  it.prop(
    "exec and attach messages carry their kind, and a start its stdin flag, as the generated code reads them",
    [execMessages, attachMessages],
    ([e, a]) => {
      const start = e._tag === "Start" ? Wire.ExecRequest.decode(D.exec.requestSerialize(e)) : undefined
      if (e._tag === "Start") assert.strictEqual(start?.kind?.$case === "start" && start.kind.value.stdin, e.stdin)
      const wire = Wire.AttachRequest.decode(D.attach.requestSerialize(a))
      assert.strictEqual(
        wire.kind?.$case,
        { Start: "start", Data: "input", Resize: "resize", Unreadable: undefined }[a._tag]
      )
    }
  )

  it("reads what the codecs cannot read as Unreadable", () => {
    const execEvent = (w: Wire.ExecEvent) => D.exec.responseDeserialize(Buffer.from(Wire.ExecEvent.encode(w).finish()))
    assert.deepStrictEqual(execEvent({ kind: { $case: "started", value: { machine: undefined, sessionId: "s" } } }), {
      _tag: "Unreadable"
    })
    const attachEvent = (w: Wire.AttachEvent) =>
      D.attach.responseDeserialize(Buffer.from(Wire.AttachEvent.encode(w).finish()))
    assert.deepStrictEqual(attachEvent({ kind: undefined }), { _tag: "Unreadable" })
  })
})
