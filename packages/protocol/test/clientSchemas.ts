/**
 * Schemas for the client-side domain values that `@cmdop/domain/RelayClient` declares as plain types
 * (`Principal`, `ExecRequest`, `ExecEvent`, `AttachRequest`, `AttachInput`, `AttachEvent`, `PtySession`), and the
 * share links the wire carries, so the codec laws
 * can draw them with `Arbitrary.make`. Each schema's type is checked against the domain type below: a field added
 * to the domain and not here fails the build.
 *
 * They describe canonical values: an optional string is absent rather than empty, an optional list absent rather
 * than empty, numbers are what the wire's integer fields carry.
 */
import { Machine } from "@cmdop/domain/Machine"
import type * as RelayClient from "@cmdop/domain/RelayClient"
import { ShareEvent as ShareEventClass, ShareLink as ShareLinkClass } from "@cmdop/domain/ShareLink"
import * as Schema from "effect/Schema"

const Uint32 = Schema.Int.pipe(Schema.between(0, 0xffff_ffff))
const Int32 = Schema.Int.pipe(Schema.between(-0x8000_0000, 0x7fff_ffff))
const Offset = Schema.NonNegativeInt
const optionalText = Schema.optionalWith(Schema.NonEmptyString, { exact: true })

/** A machine whose heartbeat time the wire carries (a positive integer; 0 on the wire means "never"). */
export const WireMachine = Machine.pipe(
  Schema.filter(
    (m) => m.lastHeartbeatAt === undefined || (Number.isSafeInteger(m.lastHeartbeatAt) && m.lastHeartbeatAt > 0)
  )
)

export const Principal = Schema.Struct({
  workspaceId: Schema.String,
  workspaceName: Schema.String,
  kind: Schema.Literal("key", "user", "guest"),
  principal: Schema.String,
  machineId: optionalText
})

export const ExecRequest = Schema.Struct({
  machine: Schema.String,
  argv: Schema.Array(Schema.String),
  shell: Schema.Boolean,
  timeoutMs: Uint32,
  env: Schema.Record({ key: Schema.String, value: Schema.String }),
  cwd: optionalText
})

export const ExecEvent = Schema.Union(
  Schema.TaggedStruct("Started", { machine: WireMachine, sessionId: Schema.String }),
  Schema.TaggedStruct("Stdout", { data: Schema.Uint8ArrayFromSelf }),
  Schema.TaggedStruct("Stderr", { data: Schema.Uint8ArrayFromSelf }),
  Schema.TaggedStruct("Exit", {
    exitCode: Int32,
    signal: optionalText,
    timedOut: Schema.Boolean,
    error: optionalText,
    durationMs: Schema.Int
  })
)

export const AttachRequest = Schema.Struct({
  machine: Schema.String,
  sessionId: optionalText,
  cols: Uint32,
  rows: Uint32,
  term: optionalText,
  command: Schema.optionalWith(Schema.NonEmptyArray(Schema.String), { exact: true }),
  resumeFrom: Schema.optionalWith(Offset, { exact: true })
})

export const AttachInput = Schema.Union(
  Schema.TaggedStruct("Data", { data: Schema.Uint8ArrayFromSelf }),
  Schema.TaggedStruct("Resize", { cols: Uint32, rows: Uint32 })
)

export const AttachEvent = Schema.Union(
  Schema.TaggedStruct("Attached", {
    machine: WireMachine,
    sessionId: Schema.String,
    created: Schema.Boolean,
    offset: Offset
  }),
  Schema.TaggedStruct("Output", { offset: Offset, data: Schema.Uint8ArrayFromSelf }),
  Schema.TaggedStruct("Ended", {
    exitCode: Int32,
    signal: optionalText,
    reason: Schema.String,
    cut: Schema.optionalWith(Schema.Literal(true), { exact: true })
  }),
  Schema.TaggedStruct("Notice", { text: Schema.String })
)

export const PtySession = Schema.Struct({
  sessionId: Schema.String,
  command: Schema.String,
  cols: Uint32,
  rows: Uint32,
  createdAt: Schema.Int,
  lastActivityAt: Schema.Int,
  viewers: Uint32,
  owner: Schema.String
})

/** Times are whole milliseconds since the epoch, positive when present (0 on the wire means absent). */
const Time = Schema.Int.pipe(Schema.positive())
const optionalTime = Schema.optionalWith(Time, { exact: true })
const ShareEvent = Schema.Struct({ ...ShareEventClass.fields, at: Time })

/** The fields of a share link the wire carries (a `ShareLink` is built from them). */
export const ShareLink = Schema.Struct({
  ...ShareLinkClass.fields,
  createdAt: Time,
  expiresAt: optionalTime,
  revokedAt: optionalTime,
  lastUsedAt: optionalTime,
  useCount: Schema.NonNegativeInt.pipe(Schema.lessThanOrEqualTo(0xffff_ffff)),
  events: Schema.Array(ShareEvent)
})

/** A `ShareLink` from drawn fields. */
export const toShareLink = (l: typeof ShareLink.Type): ShareLinkClass =>
  new ShareLinkClass({ ...l, events: l.events.map((e) => new ShareEventClass(e)) })

// Each schema describes exactly its domain type.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const check = <T extends true>(): T => undefined as unknown as T
void check<Same<typeof Principal.Type, RelayClient.Principal>>
void check<Same<typeof ExecEvent.Type, RelayClient.ExecEvent>>
void check<Same<typeof AttachInput.Type, RelayClient.AttachInput>>
void check<Same<typeof AttachEvent.Type, RelayClient.AttachEvent>>
void check<Same<typeof PtySession.Type, RelayClient.PtySession>>
void check<[typeof ExecRequest.Type] extends [RelayClient.ExecRequest] ? true : false>
void check<[typeof AttachRequest.Type] extends [RelayClient.AttachRequest] ? true : false>
