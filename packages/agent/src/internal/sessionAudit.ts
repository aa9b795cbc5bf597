/**
 * What `AgentEngine` records in the machine's audit log for one link: opens, ends, and input (PTY keystrokes and
 * exec stdin) tallied per session and caller (a chunk only adds to a counter; `flushInput` writes the tallies as
 * `input` lines).
 * Without a log every operation does nothing.
 */
import type * as AgentLink from "@cmdop/domain/AgentLink"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as AuditLog from "../AuditLog.js"
import type { PtySessions } from "../PtySessions.js"

/** The caller fields of a line (for an end: the opener's). */
export type Who = Pick<AuditLog.Entry, "caller" | "caller_kind" | "share_id">

export interface SessionAudit {
  /** `session_open` (decision `allow`); `digest` is computed only when there is a log. */
  readonly open: (id: string, mode: AuditLog.Entry["mode"], who: Who, digest: () => string) => Effect.Effect<void>
  readonly end: (
    id: string,
    mode: AuditLog.Entry["mode"],
    who: Who,
    fields: { readonly exit_code?: number; readonly reason: string; readonly duration_ms?: number }
  ) => Effect.Effect<void>
  /** Adds `bytes` of input to the caller's tally for the session (cheap: no I/O). */
  readonly input: (
    id: string,
    mode: AuditLog.Entry["mode"],
    caller: AgentLink.Caller | undefined,
    bytes: number
  ) => Effect.Effect<void>
  /** Writes the tallies (only session `id`'s, when given) as `input` lines and resets them. */
  readonly flushInput: (id?: string) => Effect.Effect<void>
  /**
   * Records the PTY session's end when it happens, from a fiber of its own: the session outlives the link, and so
   * does this wait (it ends with the session, which `PtySessions` ends at the latest when its scope closes).
   */
  readonly watchPty: (ptys: PtySessions["Type"], id: string, who: Who) => Effect.Effect<void>
}

interface Tally {
  readonly id: string
  readonly who: Who
  readonly mode: AuditLog.Entry["mode"]
  readonly at: number
  bytes: number
}

const none: SessionAudit = {
  open: () => Effect.void,
  end: () => Effect.void,
  input: () => Effect.void,
  flushInput: () => Effect.void,
  watchPty: () => Effect.void
}

export const make = (log: AuditLog.AuditLog["Type"] | undefined): SessionAudit => {
  if (log === undefined) return none
  const tallies = new Map<string, Tally>()

  const record = (entry: AuditLog.Entry) =>
    log
      .append(entry)
      .pipe(Effect.catchAll((error) => Effect.logWarning(`cannot write the audit log: ${error.message}`)))
  const now = Effect.map(Clock.currentTimeMillis, AuditLog.timestamp)

  const end: SessionAudit["end"] = (id, mode, who, fields) =>
    Effect.flatMap(now, (ts) => record({ ts, event: "session_end", ...who, session_id: id, mode, ...fields }))

  const flushInput: SessionAudit["flushInput"] = (id) =>
    Effect.suspend(() => {
      const due: Array<Tally> = []
      for (const [key, tally] of tallies) {
        if (id !== undefined && tally.id !== id) continue
        tallies.delete(key)
        due.push(tally)
      }
      return Effect.forEach(
        due,
        (tally) =>
          record({
            ts: AuditLog.timestamp(tally.at),
            event: "input",
            ...tally.who,
            session_id: tally.id,
            mode: tally.mode,
            bytes: tally.bytes
          }),
        { discard: true }
      )
    })

  return {
    open: (id, mode, who, digest) =>
      Effect.flatMap(now, (ts) =>
        record({
          ts,
          event: "session_open",
          decision: "allow",
          ...who,
          session_id: id,
          mode,
          command_digest: digest()
        })
      ),
    end,
    input: (id, mode, caller, bytes) =>
      Effect.flatMap(Clock.currentTimeMillis, (at) =>
        Effect.sync(() => {
          const key = `${id}\0${caller?.kind ?? ""}\0${caller?.principal ?? ""}\0${caller?.shareId ?? ""}`
          const tally = tallies.get(key)
          if (tally !== undefined) tally.bytes += bytes
          else tallies.set(key, { id, who: AuditLog.callerFields(caller), mode, at, bytes })
        })
      ),
    flushInput,
    watchPty: (ptys, id, who) =>
      Effect.asVoid(
        Effect.forkDaemon(
          Effect.flatMap(Effect.either(ptys.exited(id)), (exited) =>
            exited._tag === "Left"
              ? Effect.void
              : Effect.zipRight(
                  flushInput(id),
                  end(id, "pty", who, {
                    exit_code: exited.right.exitCode,
                    reason: exited.right.reason,
                    duration_ms: exited.right.durationMs
                  })
                )
          )
        )
      )
  }
}
