/**
 * Interactive sessions between the domain (`AttachRequest`, `AttachInput`, `AttachEvent`, `PtySession`) and the
 * client wire messages (`AttachStart`, `AttachRequest`, `AttachEvent`, `PtySession`).
 */
import { AttachEvent, AttachInput, type AttachRequest, type PtySession } from "@cmdop/domain/RelayClient"
import type * as Wire from "./generated/cmdop/connect/v1/client.js"
import * as MachineCodec from "./MachineCodec.js"

const toBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

export const startToWire = (r: AttachRequest): Wire.AttachRequest => ({
  kind: {
    $case: "start",
    value: {
      machine: r.machine,
      sessionId: r.sessionId ?? "",
      size: { cols: r.cols, rows: r.rows },
      term: r.term ?? "",
      command: [...(r.command ?? [])],
      resumeFrom: r.resumeFrom ?? 0,
      resume: r.resumeFrom !== undefined
    }
  }
})

export const startFromWire = (s: Wire.AttachStart): AttachRequest => ({
  machine: s.machine,
  cols: s.size?.cols ?? 80,
  rows: s.size?.rows ?? 24,
  ...(s.sessionId === "" ? {} : { sessionId: s.sessionId }),
  ...(s.term === "" ? {} : { term: s.term }),
  ...(s.command.length === 0 ? {} : { command: s.command }),
  ...(s.resume ? { resumeFrom: s.resumeFrom } : {})
})

export const inputToWire = (i: AttachInput): Wire.AttachRequest =>
  i._tag === "Data"
    ? { kind: { $case: "input", value: toBuffer(i.data) } }
    : { kind: { $case: "resize", value: { cols: i.cols, rows: i.rows } } }

/** `undefined` for messages that are not input (a second start, an unknown kind). */
export const inputFromWire = (m: Wire.AttachRequest): AttachInput | undefined => {
  const k = m.kind
  if (k?.$case === "input") return AttachInput.Data({ data: k.value })
  if (k?.$case === "resize") return AttachInput.Resize({ cols: k.value.cols, rows: k.value.rows })
  return undefined
}

export const eventToWire = (e: AttachEvent): Wire.AttachEvent => {
  switch (e._tag) {
    case "Attached":
      return {
        kind: {
          $case: "attached",
          value: {
            machine: MachineCodec.toWire(e.machine),
            sessionId: e.sessionId,
            created: e.created,
            offset: e.offset
          }
        }
      }
    case "Output":
      return { kind: { $case: "output", value: { offset: e.offset, data: toBuffer(e.data) } } }
    case "Ended":
      return {
        kind: {
          $case: "ended",
          value: { exitCode: e.exitCode, signal: e.signal ?? "", reason: e.reason, cut: e.cut === true }
        }
      }
    case "Notice":
      return { kind: { $case: "notice", value: e.text } }
  }
}

export const eventFromWire = (e: Wire.AttachEvent): AttachEvent | undefined => {
  const k = e.kind
  switch (k?.$case) {
    case "attached":
      return k.value.machine
        ? AttachEvent.Attached({
            machine: MachineCodec.fromWire(k.value.machine),
            sessionId: k.value.sessionId,
            created: k.value.created,
            offset: k.value.offset
          })
        : undefined
    case "output":
      return AttachEvent.Output({ offset: k.value.offset, data: k.value.data })
    case "ended":
      return AttachEvent.Ended({
        exitCode: k.value.exitCode,
        reason: k.value.reason,
        ...(k.value.signal === "" ? {} : { signal: k.value.signal }),
        ...(k.value.cut ? { cut: true } : {})
      })
    case "notice":
      return AttachEvent.Notice({ text: k.value })
    default:
      return undefined
  }
}

export const sessionToWire = (s: PtySession): Wire.PtySession => ({ ...s })
export const sessionFromWire = (s: Wire.PtySession): PtySession => ({ ...s })
