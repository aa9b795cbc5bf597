/**
 * Exec events and requests between the domain (`RelayClient.ExecEvent`, `ExecRequest`) and the client wire
 * messages (`ExecEvent`, `ExecStart`).
 */
import { ExecEvent, type ExecRequest } from "@cmdop/domain/RelayClient"
import type * as Wire from "./generated/cmdop/connect/v1/client.js"
import * as MachineCodec from "./MachineCodec.js"

export const startToWire = (r: ExecRequest, withStdin: boolean): Wire.ExecStart => ({
  machine: r.machine,
  argv: [...r.argv],
  shell: r.shell ?? false,
  timeoutMs: r.timeoutMs ?? 0,
  stdin: withStdin,
  env: { ...r.env },
  cwd: r.cwd ?? ""
})

export const startFromWire = (s: Wire.ExecStart): ExecRequest => ({
  machine: s.machine,
  argv: s.argv,
  shell: s.shell,
  timeoutMs: s.timeoutMs,
  env: s.env,
  ...(s.cwd === "" ? {} : { cwd: s.cwd })
})

export const eventToWire = (e: ExecEvent): Wire.ExecEvent => {
  switch (e._tag) {
    case "Started":
      return { kind: { $case: "started", value: { machine: MachineCodec.toWire(e.machine), sessionId: e.sessionId } } }
    case "Stdout":
      return { kind: { $case: "stdout", value: Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength) } }
    case "Stderr":
      return { kind: { $case: "stderr", value: Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength) } }
    case "Exit":
      return {
        kind: {
          $case: "exit",
          value: {
            exitCode: e.exitCode,
            signal: e.signal ?? "",
            timedOut: e.timedOut,
            error: e.error ?? "",
            durationMs: e.durationMs
          }
        }
      }
  }
}

/** `undefined` for an event this client does not know (a newer relay); callers skip it. */
export const eventFromWire = (e: Wire.ExecEvent): ExecEvent | undefined => {
  const kind = e.kind
  switch (kind?.$case) {
    case "started":
      return kind.value.machine
        ? ExecEvent.Started({ machine: MachineCodec.fromWire(kind.value.machine), sessionId: kind.value.sessionId })
        : undefined
    case "stdout":
      return ExecEvent.Stdout({ data: kind.value })
    case "stderr":
      return ExecEvent.Stderr({ data: kind.value })
    case "exit":
      return ExecEvent.Exit({
        exitCode: kind.value.exitCode,
        timedOut: kind.value.timedOut,
        durationMs: kind.value.durationMs,
        ...(kind.value.signal === "" ? {} : { signal: kind.value.signal }),
        ...(kind.value.error === "" ? {} : { error: kind.value.error })
      })
    default:
      return undefined
  }
}
