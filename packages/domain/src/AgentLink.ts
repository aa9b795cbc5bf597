/**
 * What a relay and an agent say to each other over the agent's one outbound stream, independent of the wire: the
 * agent's messages (`AgentMessage`) and the relay's (`RelayMessage`), each a union of tagged structs. Code
 * behind the wire speaks these; `AgentLinkCodec` (in `@cmdop/protocol`) maps them to and from protobuf at the edge.
 *
 * The conversation: the agent sends `Hello` first and the relay answers `Welcome` (or ends the stream). Then, over
 * the one stream, many sessions by id: the relay opens them (`SessionOpen`, exec or PTY), feeds them
 * (`SessionInput`, `SessionResize`, `SessionSignal`), may end them early (`SessionClose`) and asks for a PTY
 * session's recent output again (`SessionReplay`); the agent streams their output (`SessionOutput`) and ends each
 * with exactly one `SessionExit`. Both sides send `Heartbeat`s and return flow-control credit with `SessionAck`:
 * at most `window` bytes of a session's data are unacknowledged per direction.
 *
 * Messages are plain readonly objects: build them as literals (`{ _tag: "Heartbeat", at }`, no validation on the
 * hot path) or with a schema's `make` (validated). Payload bytes are `Uint8Array` views; codecs never copy them.
 * The schemas bound every number to what the wire carries, so `Arbitrary.make` yields only encodable messages.
 */
import * as Schema from "effect/Schema"
import { Machine } from "./Machine.js"

/** An unsigned 32-bit integer (window sizes, terminal sizes, byte counts, milliseconds). */
export const Uint32 = Schema.Int.pipe(Schema.between(0, 0xffff_ffff))

/** A signed 32-bit integer (exit codes). */
export const Int32 = Schema.Int.pipe(Schema.between(-0x8000_0000, 0x7fff_ffff))

/** A time in milliseconds since the epoch (or a duration in milliseconds), a safe integer. */
export const Millis = Schema.Int

/** A position in a session's whole output stream, in bytes. */
export const Offset = Schema.NonNegativeInt

/** Which stream of a session data belongs to. */
export const Pipe = Schema.Literal("stdout", "stderr", "stdin")
export type Pipe = typeof Pipe.Type

/** How the principal behind a session authenticated: workspace API key, OAuth login, or share link. */
export const CallerKind = Schema.Literal("key", "user", "guest")
export type CallerKind = typeof CallerKind.Type

/** Who opened a session or typed into it, for the machine's own gate and audit log. */
export const Caller = Schema.Struct({
  kind: CallerKind,
  /** A non-secret name of the principal (key prefix, user email, share link id). */
  principal: Schema.String,
  /** For a guest: the share link it came through. */
  shareId: Schema.optionalWith(Schema.NonEmptyString, { exact: true })
})
export type Caller = typeof Caller.Type

/**
 * A machine as its agent presents itself (in `Hello` and at registration). The values are the agent's claim: the
 * relay validates id and hostname itself and keeps only a hash of the secret.
 */
export const MachineIdentity = Schema.Struct({
  machineId: Schema.String,
  machineSecret: Schema.RedactedFromSelf(Schema.String),
  hostname: Schema.String,
  /** Empty: the hostname is the display name. */
  name: Schema.String,
  os: Schema.String,
  agentVersion: Schema.String
})
export type MachineIdentity = typeof MachineIdentity.Type

/** An interactive (PTY) session as the agent reports it; such sessions outlive relay connections. */
export const PtySessionInfo = Schema.Struct({
  sessionId: Schema.String,
  /** The command line running in the PTY (the shell). */
  command: Schema.String,
  cols: Uint32,
  rows: Uint32,
  createdAt: Millis,
  lastActivityAt: Millis,
  /** Total bytes of output the session has produced so far (the offset of the next byte). */
  outputOffset: Offset,
  /** Who opened it (non-secret principal). */
  owner: Schema.String
})
export type PtySessionInfo = typeof PtySessionInfo.Type

/** A command to run: `argv[0]` spawned directly, or `argv` joined and run by the user's shell when `shell`. */
export const ExecSpec = Schema.TaggedStruct("Exec", {
  argv: Schema.Array(Schema.String),
  shell: Schema.Boolean,
  /** 0: no limit. At the limit the process tree is killed and the exit says `timedOut`. */
  timeoutMs: Uint32,
  /** True when the client sends stdin; otherwise the process gets an empty, closed stdin. */
  stdin: Schema.Boolean,
  env: Schema.Record({ key: Schema.String, value: Schema.String }),
  cwd: Schema.optionalWith(Schema.NonEmptyString, { exact: true })
})
export type ExecSpec = typeof ExecSpec.Type

/** A new interactive session: a PTY running the login shell, or `command` when given. */
export const PtySpec = Schema.TaggedStruct("Pty", {
  cols: Uint32,
  rows: Uint32,
  /** Empty: the agent's default terminal type. */
  term: Schema.String,
  /** Empty: the agent's configured shell or the user's login shell. */
  command: Schema.Array(Schema.String)
})
export type PtySpec = typeof PtySpec.Type

/** Not a session to run: may the caller join the live PTY session `sessionId`? The agent's gate answers. */
export const AttachSpec = Schema.TaggedStruct("Attach", { sessionId: Schema.String })
export type AttachSpec = typeof AttachSpec.Type

// --- both directions ------------------------------------------------------------------------------------------------

/** Either side, every `heartbeatSeconds`; the relay echoes the agent's `at`. */
export const Heartbeat = Schema.TaggedStruct("Heartbeat", {
  at: Millis,
  /** Agent → relay: whether a permissions.yaml is in force (false: no gate configured). */
  gateConfigured: Schema.optionalWith(Schema.Boolean, { exact: true })
})
export type Heartbeat = typeof Heartbeat.Type

/** Returns `bytes` of credit for a session's `pipe` to the peer that sent the data. */
export const SessionAck = Schema.TaggedStruct("SessionAck", {
  sessionId: Schema.String,
  pipe: Pipe,
  bytes: Uint32
})
export type SessionAck = typeof SessionAck.Type

// --- agent → relay --------------------------------------------------------------------------------------------------

/** The agent's first message: who it is, the window it asks for, and its PTY sessions still alive. */
export const Hello = Schema.TaggedStruct("Hello", {
  identity: MachineIdentity,
  /** Bytes per session the agent may have unacknowledged; the relay may lower it in `Welcome`. 0: the relay's. */
  window: Uint32,
  ptySessions: Schema.Array(PtySessionInfo),
  /** Whether a permissions.yaml is in force on the machine (false: no gate configured). */
  gateConfigured: Schema.optionalWith(Schema.Boolean, { exact: true })
})
export type Hello = typeof Hello.Type

/** Output of a session. For PTY sessions `offset` is the position of `data[0]` in its output; 0 for exec. */
export const SessionOutput = Schema.TaggedStruct("SessionOutput", {
  sessionId: Schema.String,
  pipe: Pipe,
  data: Schema.Uint8ArrayFromSelf,
  offset: Offset
})
export type SessionOutput = typeof SessionOutput.Type

/** The one end of a session. A signal n is reported as exit code 128 + n with `signal` set to its name. */
export const SessionExit = Schema.TaggedStruct("SessionExit", {
  sessionId: Schema.String,
  exitCode: Int32,
  signal: Schema.optionalWith(Schema.NonEmptyString, { exact: true }),
  timedOut: Schema.Boolean,
  /** Set when the session never ran (spawn failed, denied by the gate); the exit code is then 127 or 126. */
  error: Schema.optionalWith(Schema.NonEmptyString, { exact: true }),
  durationMs: Millis,
  /** True when the machine's gate refused the session (`error` is what the caller reads). */
  gateDenied: Schema.optionalWith(Schema.Boolean, { exact: true })
})
export type SessionExit = typeof SessionExit.Type

/** A session held by the machine's gate (`ask`), waiting for an operator; never shown to the caller. */
export const ApprovalPending = Schema.TaggedStruct("ApprovalPending", {
  approvalId: Schema.String,
  sessionId: Schema.String,
  caller: Schema.String,
  callerKind: CallerKind,
  shareId: Schema.optionalWith(Schema.NonEmptyString, { exact: true }),
  user: Schema.optionalWith(Schema.NonEmptyString, { exact: true }),
  mode: Schema.Literal("exec", "shell", "attach"),
  /** What will run (exec) or the session kind. */
  command: Schema.String,
  /** The rule that asked (`file:line`). */
  rule: Schema.String,
  createdAt: Millis,
  expiresAt: Millis
})
export type ApprovalPending = typeof ApprovalPending.Type

/** The held session is decided (answered, expired, gone): no longer pending. */
export const ApprovalSettled = Schema.TaggedStruct("ApprovalSettled", { approvalId: Schema.String })
export type ApprovalSettled = typeof ApprovalSettled.Type

/** Everything an agent sends. */
export const AgentMessage = Schema.Union(
  Hello,
  Heartbeat,
  SessionOutput,
  SessionExit,
  SessionAck,
  ApprovalPending,
  ApprovalSettled
)
export type AgentMessage = typeof AgentMessage.Type

// --- relay → agent --------------------------------------------------------------------------------------------------

/** The relay's answer to `Hello`: the machine as registered, and the terms of the link. */
export const Welcome = Schema.TaggedStruct("Welcome", {
  machine: Machine,
  workspaceName: Schema.String,
  /** Seconds between heartbeats the relay expects. */
  heartbeatSeconds: Uint32,
  /** The flow-control window both sides use for every session on this stream. */
  window: Uint32,
  /** Cluster mode: where agents reach the live relay nodes (a hint for failover); absent for a single relay. */
  relayAddresses: Schema.optional(Schema.NonEmptyArray(Schema.String))
})
export type Welcome = typeof Welcome.Type

/**
 * Opens a session: a command (`Exec`) or an interactive shell (`Pty`); or, with `Attach`, asks the gate whether the
 * caller may join a live PTY session (answered by one `SessionExit` for `sessionId`: 0 admitted, 126 refused).
 */
export const SessionOpen = Schema.TaggedStruct("SessionOpen", {
  sessionId: Schema.String,
  spec: Schema.Union(ExecSpec, PtySpec, AttachSpec),
  caller: Schema.optionalWith(Caller, { exact: true })
})
export type SessionOpen = typeof SessionOpen.Type

/** Stdin (exec) or keystrokes (PTY); `eof` closes stdin after `data`. */
export const SessionInput = Schema.TaggedStruct("SessionInput", {
  sessionId: Schema.String,
  data: Schema.Uint8ArrayFromSelf,
  eof: Schema.Boolean,
  /** Who typed it (several viewers may share a PTY session). */
  caller: Schema.optionalWith(Caller, { exact: true })
})
export type SessionInput = typeof SessionInput.Type

export const SessionResize = Schema.TaggedStruct("SessionResize", {
  sessionId: Schema.String,
  cols: Uint32,
  rows: Uint32
})
export type SessionResize = typeof SessionResize.Type

/** Sends a signal, named without `SIG` (`INT`, `TERM`, `HUP`), to a session's process. */
export const SessionSignal = Schema.TaggedStruct("SessionSignal", {
  sessionId: Schema.String,
  signal: Schema.String
})
export type SessionSignal = typeof SessionSignal.Type

/** Ends a session early (client gone, timeout, revocation); the agent kills it and still answers `SessionExit`. */
export const SessionClose = Schema.TaggedStruct("SessionClose", {
  sessionId: Schema.String,
  reason: Schema.String
})
export type SessionClose = typeof SessionClose.Type

/** Asks for a PTY session's output again from `fromOffset` (clamped to what the agent still holds). */
export const SessionReplay = Schema.TaggedStruct("SessionReplay", {
  sessionId: Schema.String,
  fromOffset: Offset
})
export type SessionReplay = typeof SessionReplay.Type

/** A workspace key holder's answer to a held session; `forLink`: the share link's later asks too. */
export const ApprovalAnswer = Schema.TaggedStruct("ApprovalAnswer", {
  approvalId: Schema.String,
  approve: Schema.Boolean,
  forLink: Schema.Boolean,
  approver: Schema.String
})
export type ApprovalAnswer = typeof ApprovalAnswer.Type

/** Everything a relay sends. */
export const RelayMessage = Schema.Union(
  Welcome,
  Heartbeat,
  SessionOpen,
  SessionInput,
  SessionResize,
  SessionSignal,
  SessionClose,
  SessionAck,
  SessionReplay,
  ApprovalAnswer
)
export type RelayMessage = typeof RelayMessage.Type
