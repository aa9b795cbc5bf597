/**
 * One gate decision as a line of the machine's `audit.log` (JSON). The command itself is not stored, only its
 * digest, so the log can be shared without leaking arguments; `commandDigest` recomputes it.
 */
import { createHash } from "node:crypto"
import * as Schema from "effect/Schema"
import type { Decision } from "./Decide.js"
import { Action, CallerKind, Mode } from "./Policy.js"
import type { GateRequest } from "./Request.js"

export class AuditRecord extends Schema.Class<AuditRecord>("@cmdop/gate/AuditRecord")({
  /** ISO-8601 time of the decision (from `Clock`). */
  ts: Schema.String,
  decision: Action,
  /** Display name of the caller (key name, email, link label). */
  caller: Schema.String,
  caller_kind: CallerKind,
  share_id: Schema.NullOr(Schema.String),
  user: Schema.NullOr(Schema.String),
  mode: Mode,
  /** sha256 of the argv (see `commandDigest`), hex; null for shell and attach. */
  command_digest: Schema.NullOr(Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/))),
  /** `file:line`, `"floor"` or `"default"`. */
  rule: Schema.String,
  /** Who answered an `ask` (an operator on the machine or a workspace owner); null otherwise. */
  approver: Schema.NullOr(Schema.String)
}) {}

/** sha256 over the argv, each word followed by a NUL byte (so `["a b"]` and `["a", "b"]` differ), hex. */
export const commandDigest = (argv: ReadonlyArray<string>): string => {
  const hash = createHash("sha256")
  for (const word of argv) hash.update(word, "utf8").update("\0")
  return hash.digest("hex")
}

/** The JSON line for `audit.log` (without the newline). */
export const toJsonLine = (record: AuditRecord): string => JSON.stringify(Schema.encodeSync(AuditRecord)(record))

/** The record for one decision; `at` is epoch milliseconds from `Clock`, `approver` who answered an `ask`. */
export const fromDecision = (request: GateRequest, decision: Decision, at: number, approver?: string): AuditRecord => {
  const { caller } = request
  return new AuditRecord({
    ts: new Date(at).toISOString(),
    decision: decision.action,
    caller: caller.name ?? caller.user ?? caller.shareId ?? caller.kind,
    caller_kind: caller.kind,
    share_id: caller.shareId ?? null,
    user: caller.user ?? null,
    mode: request.mode,
    command_digest: request.mode === "exec" ? commandDigest(request.argv ?? []) : null,
    rule: decision.rule,
    approver: approver ?? null
  })
}
