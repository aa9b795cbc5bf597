/**
 * The agent link between the domain (`AgentLink.AgentMessage`, `AgentLink.RelayMessage`, `MachineIdentity`) and
 * the wire (`AgentMessage`, `RelayMessage`, `MachineIdentity` of `agent.proto`).
 *
 * Wire conventions: an empty string means "absent" for the optional strings (`cwd`, `signal`, `error`,
 * `shareId`); `PIPE_UNSPECIFIED` is read as stdout. Payload bytes are never copied: both directions make views
 * over the same memory. Decoding answers `undefined` for a message it cannot read (an unknown kind from a newer
 * peer, a `SessionOpen` without a spec, a `Welcome` without a machine); callers skip it.
 */
import * as Link from "@cmdop/domain/AgentLink"
import { isNonEmptyReadonlyArray as isNonEmpty } from "effect/Array"
import * as Redacted from "effect/Redacted"
import * as Wire from "./generated/cmdop/connect/v1/agent.js"
import * as ApprovalCodec from "./ApprovalCodec.js"
import * as MachineCodec from "./MachineCodec.js"

/** A `Buffer` over the same memory (the generated types ask for `Buffer`). */
const toBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

/** A plain `Uint8Array` over the same memory (the wire hands out `Buffer`s). */
const toBytes = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

const optional = <K extends string>(key: K, s: string): { readonly [k in K]?: string } =>
  (s === "" ? {} : { [key]: s }) as { readonly [k in K]?: string }

// --- parts ----------------------------------------------------------------------------------------------------------

export const pipeToWire = (p: Link.Pipe): Wire.Pipe =>
  p === "stdout" ? Wire.Pipe.PIPE_STDOUT : p === "stderr" ? Wire.Pipe.PIPE_STDERR : Wire.Pipe.PIPE_STDIN

export const pipeFromWire = (p: Wire.Pipe): Link.Pipe =>
  p === Wire.Pipe.PIPE_STDERR ? "stderr" : p === Wire.Pipe.PIPE_STDIN ? "stdin" : "stdout"

export const callerToWire = (c: Link.Caller | undefined): Wire.Caller | undefined =>
  c === undefined ? undefined : { kind: c.kind, principal: c.principal, shareId: c.shareId ?? "" }

const isCallerKind = (k: string): k is Link.CallerKind => k === "key" || k === "user" || k === "guest"

/** A caller of an unknown kind (a newer relay) reads as absent. */
export const callerFromWire = (c: Wire.Caller | undefined): Link.Caller | undefined =>
  c === undefined || !isCallerKind(c.kind)
    ? undefined
    : { kind: c.kind, principal: c.principal, ...optional("shareId", c.shareId) }

export const identityToWire = (i: Link.MachineIdentity): Wire.MachineIdentity => ({
  machineId: i.machineId,
  machineSecret: Redacted.value(i.machineSecret),
  hostname: i.hostname,
  name: i.name,
  os: i.os,
  agentVersion: i.agentVersion
})

export const identityFromWire = (i: Wire.MachineIdentity): Link.MachineIdentity => ({
  machineId: i.machineId,
  machineSecret: Redacted.make(i.machineSecret),
  hostname: i.hostname,
  name: i.name,
  os: i.os,
  agentVersion: i.agentVersion
})

export const ptySessionToWire = (s: Link.PtySessionInfo): Wire.PtySessionInfo => ({ ...s })
export const ptySessionFromWire = (s: Wire.PtySessionInfo): Link.PtySessionInfo => ({
  sessionId: s.sessionId,
  command: s.command,
  cols: s.cols,
  rows: s.rows,
  createdAt: s.createdAt,
  lastActivityAt: s.lastActivityAt,
  outputOffset: s.outputOffset,
  owner: s.owner
})

const specToWire = (s: Link.SessionOpen["spec"]): Wire.SessionOpen["kind"] =>
  s._tag === "Exec"
    ? {
        $case: "exec",
        value: {
          argv: [...s.argv],
          shell: s.shell,
          timeoutMs: s.timeoutMs,
          stdin: s.stdin,
          env: { ...s.env },
          cwd: s.cwd ?? ""
        }
      }
    : s._tag === "Pty"
      ? { $case: "pty", value: { cols: s.cols, rows: s.rows, term: s.term, command: [...s.command] } }
      : { $case: "attach", value: { sessionId: s.sessionId } }

const specFromWire = (k: Wire.SessionOpen["kind"]): Link.SessionOpen["spec"] | undefined => {
  switch (k?.$case) {
    case "attach":
      return { _tag: "Attach", sessionId: k.value.sessionId }
    case "exec":
      return {
        _tag: "Exec",
        argv: k.value.argv,
        shell: k.value.shell,
        timeoutMs: k.value.timeoutMs,
        stdin: k.value.stdin,
        env: k.value.env,
        ...optional("cwd", k.value.cwd)
      }
    case "pty":
      return { _tag: "Pty", cols: k.value.cols, rows: k.value.rows, term: k.value.term, command: k.value.command }
    default:
      return undefined
  }
}

const ackToWire = (a: Link.SessionAck): Wire.SessionAck => ({
  sessionId: a.sessionId,
  pipe: pipeToWire(a.pipe),
  bytes: a.bytes
})

const ackFromWire = (a: Wire.SessionAck): Link.SessionAck => ({
  _tag: "SessionAck",
  sessionId: a.sessionId,
  pipe: pipeFromWire(a.pipe),
  bytes: a.bytes
})

const heartbeatToWire = (m: Link.Heartbeat): Wire.Heartbeat => ({
  at: m.at,
  ...(m.gateConfigured === undefined ? {} : { gateConfigured: m.gateConfigured })
})

const heartbeatFromWire = (h: Wire.Heartbeat): Link.Heartbeat => ({
  _tag: "Heartbeat",
  at: h.at,
  ...(h.gateConfigured === undefined ? {} : { gateConfigured: h.gateConfigured })
})

// --- agent → relay --------------------------------------------------------------------------------------------------

export const agentMessageToWire = (m: Link.AgentMessage): Wire.AgentMessage => {
  switch (m._tag) {
    case "Hello":
      return {
        kind: {
          $case: "hello",
          value: {
            identity: identityToWire(m.identity),
            window: m.window,
            ptySessions: m.ptySessions.map(ptySessionToWire),
            ...(m.gateConfigured === undefined ? {} : { gateConfigured: m.gateConfigured })
          }
        }
      }
    case "Heartbeat":
      return { kind: { $case: "heartbeat", value: heartbeatToWire(m) } }
    case "SessionOutput":
      return {
        kind: {
          $case: "output",
          value: { sessionId: m.sessionId, pipe: pipeToWire(m.pipe), data: toBuffer(m.data), offset: m.offset }
        }
      }
    case "SessionExit":
      return {
        kind: {
          $case: "exit",
          value: {
            sessionId: m.sessionId,
            exitCode: m.exitCode,
            signal: m.signal ?? "",
            timedOut: m.timedOut,
            error: m.error ?? "",
            durationMs: m.durationMs,
            ...(m.gateDenied === undefined ? {} : { gateDenied: m.gateDenied })
          }
        }
      }
    case "SessionAck":
      return { kind: { $case: "ack", value: ackToWire(m) } }
    case "ApprovalPending":
      return { kind: { $case: "approvalPending", value: ApprovalCodec.pendingToWire(m) } }
    case "ApprovalSettled":
      return { kind: { $case: "approvalSettled", value: { approvalId: m.approvalId } } }
  }
}

/** `undefined` for a message the relay cannot read (no kind, a Hello without identity). */
export const agentMessageFromWire = (m: Wire.AgentMessage): Link.AgentMessage | undefined => {
  const k = m.kind
  switch (k?.$case) {
    case "hello":
      return k.value.identity === undefined
        ? undefined
        : {
            _tag: "Hello",
            identity: identityFromWire(k.value.identity),
            window: k.value.window,
            ptySessions: k.value.ptySessions.map(ptySessionFromWire),
            ...(k.value.gateConfigured === undefined ? {} : { gateConfigured: k.value.gateConfigured })
          }
    case "heartbeat":
      return heartbeatFromWire(k.value)
    case "output":
      return {
        _tag: "SessionOutput",
        sessionId: k.value.sessionId,
        pipe: pipeFromWire(k.value.pipe),
        data: toBytes(k.value.data),
        offset: k.value.offset
      }
    case "exit":
      return {
        _tag: "SessionExit",
        sessionId: k.value.sessionId,
        exitCode: k.value.exitCode,
        timedOut: k.value.timedOut,
        durationMs: k.value.durationMs,
        ...optional("signal", k.value.signal),
        ...optional("error", k.value.error),
        ...(k.value.gateDenied === undefined ? {} : { gateDenied: k.value.gateDenied })
      }
    case "ack":
      return ackFromWire(k.value)
    case "approvalPending":
      return ApprovalCodec.pendingFromWire(k.value)
    case "approvalSettled":
      return { _tag: "ApprovalSettled", approvalId: k.value.approvalId }
    default:
      return undefined
  }
}

// --- relay → agent --------------------------------------------------------------------------------------------------

export const relayMessageToWire = (m: Link.RelayMessage): Wire.RelayMessage => {
  switch (m._tag) {
    case "Welcome":
      return {
        kind: {
          $case: "welcome",
          value: {
            machine: MachineCodec.toWire(m.machine),
            workspaceName: m.workspaceName,
            heartbeatSeconds: m.heartbeatSeconds,
            window: m.window,
            relayAddresses: [...(m.relayAddresses ?? [])]
          }
        }
      }
    case "Heartbeat":
      return { kind: { $case: "heartbeat", value: heartbeatToWire(m) } }
    case "SessionOpen":
      return {
        kind: {
          $case: "open",
          value: { sessionId: m.sessionId, kind: specToWire(m.spec), caller: callerToWire(m.caller) }
        }
      }
    case "SessionInput":
      return {
        kind: {
          $case: "input",
          value: { sessionId: m.sessionId, data: toBuffer(m.data), eof: m.eof, caller: callerToWire(m.caller) }
        }
      }
    case "SessionResize":
      return { kind: { $case: "resize", value: { sessionId: m.sessionId, cols: m.cols, rows: m.rows } } }
    case "SessionSignal":
      return { kind: { $case: "signal", value: { sessionId: m.sessionId, signal: m.signal } } }
    case "SessionClose":
      return { kind: { $case: "close", value: { sessionId: m.sessionId, reason: m.reason } } }
    case "SessionAck":
      return { kind: { $case: "ack", value: ackToWire(m) } }
    case "SessionReplay":
      return { kind: { $case: "replay", value: { sessionId: m.sessionId, fromOffset: m.fromOffset } } }
    case "ApprovalAnswer":
      return {
        kind: {
          $case: "approvalAnswer",
          value: { approvalId: m.approvalId, approve: m.approve, forLink: m.forLink, approver: m.approver }
        }
      }
  }
}

/** `undefined` for a message the agent cannot read (no kind, a Welcome without machine, an open without spec). */
export const relayMessageFromWire = (m: Wire.RelayMessage): Link.RelayMessage | undefined => {
  const k = m.kind
  switch (k?.$case) {
    case "welcome":
      return k.value.machine === undefined
        ? undefined
        : {
            _tag: "Welcome",
            machine: MachineCodec.fromWire(k.value.machine),
            workspaceName: k.value.workspaceName,
            heartbeatSeconds: k.value.heartbeatSeconds,
            window: k.value.window,
            ...(isNonEmpty(k.value.relayAddresses) ? { relayAddresses: k.value.relayAddresses } : {})
          }
    case "heartbeat":
      return heartbeatFromWire(k.value)
    case "open": {
      const spec = specFromWire(k.value.kind)
      if (spec === undefined) return undefined
      const caller = callerFromWire(k.value.caller)
      return { _tag: "SessionOpen", sessionId: k.value.sessionId, spec, ...(caller === undefined ? {} : { caller }) }
    }
    case "input": {
      const caller = callerFromWire(k.value.caller)
      return {
        _tag: "SessionInput",
        sessionId: k.value.sessionId,
        data: toBytes(k.value.data),
        eof: k.value.eof,
        ...(caller === undefined ? {} : { caller })
      }
    }
    case "resize":
      return { _tag: "SessionResize", sessionId: k.value.sessionId, cols: k.value.cols, rows: k.value.rows }
    case "signal":
      return { _tag: "SessionSignal", sessionId: k.value.sessionId, signal: k.value.signal }
    case "close":
      return { _tag: "SessionClose", sessionId: k.value.sessionId, reason: k.value.reason }
    case "ack":
      return ackFromWire(k.value)
    case "replay":
      return { _tag: "SessionReplay", sessionId: k.value.sessionId, fromOffset: k.value.fromOffset }
    case "approvalAnswer":
      return {
        _tag: "ApprovalAnswer",
        approvalId: k.value.approvalId,
        approve: k.value.approve,
        forLink: k.value.forLink,
        approver: k.value.approver
      }
    default:
      return undefined
  }
}
