/**
 * A machine could not be reached by the name given: unknown (with the near misses, if any), ambiguous (with every
 * candidate), or offline (with its heartbeat age). Crosses the wire, so it is a schema error; the gRPC bridge maps it to NOT_FOUND,
 * FAILED_PRECONDITION and UNAVAILABLE and back.
 */
import * as Schema from "effect/Schema"
import { formatAge as age } from "./Age.js"

export const Candidate = Schema.Struct({
  id: Schema.String,
  hostname: Schema.String,
  name: Schema.String,
  online: Schema.Boolean,
  lastHeartbeatAt: Schema.optional(Schema.Number)
})

export class MachineError extends Schema.TaggedError<MachineError>()("MachineError", {
  reason: Schema.Literal("NotFound", "Ambiguous", "Offline"),
  query: Schema.String,
  candidates: Schema.Array(Candidate),
  /** When the error was made (from `Clock`); heartbeat ages are relative to it, and left out without it. */
  now: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    const now = this.now
    const status = (c: typeof Candidate.Type) =>
      c.online
        ? "online"
        : c.lastHeartbeatAt === undefined || now === undefined
          ? "offline"
          : `offline ${age(now - c.lastHeartbeatAt)}`
    switch (this.reason) {
      case "NotFound": {
        // Near misses, when the relay found any (`Machine.resolve`): hostnames, since those always resolve.
        const near = this.candidates.map((c) => c.hostname)
        const guess = near.length === 0 ? "" : ` (did you mean ${near.join(" or ")}?)`
        return `machine "${this.query}" not found in this workspace${guess}; list machines with "cmdop connect --list"`
      }
      case "Ambiguous":
        return `machine "${this.query}" is ambiguous: ${this.candidates
          .map((c) => `${c.hostname} (${c.id}, ${status(c)})`)
          .join(", ")}; use the full hostname or id`
      case "Offline": {
        const c = this.candidates[0]
        const when =
          c?.lastHeartbeatAt === undefined
            ? "never connected"
            : now === undefined
              ? "not connected"
              : `last heartbeat ${age(now - c.lastHeartbeatAt)} ago`
        return `machine "${c?.hostname ?? this.query}" is offline (${when}); start its agent with "cmdop agent start"`
      }
    }
  }
}
