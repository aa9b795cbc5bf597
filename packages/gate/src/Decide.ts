/**
 * The gate's decision: given a policy (or none), a caller, a mode and for exec what it runs, allow, deny or ask.
 * Pure and synchronous (the shell parser is loaded once, see `Reader.warmUp`). `explain` returns the whole
 * reasoning; `decide` just its outcome.
 *
 * - The floor first: a floor hit, or a request that cannot be read, is a deny no rule can open.
 * - Shell and attach sessions are decided as a whole, by rules without `command`.
 * - Exec: every unit of the plan is decided on its own; the request gets the strictest verdict (deny > ask > allow).
 *   Among the rules matching a unit, deny > ask > allow; with none, the file's `default` for the caller kind.
 * - A part the gate cannot read is matched only by rules without `command`. With none, it takes the default, but
 *   never passes by default while the file denies or asks for some commands of that caller.
 */
import picomatch from "picomatch"
import type { ArgWord } from "./CommandPattern.js"
import { compileCached, matches } from "./CommandPattern.js"
import type { FloorHit } from "./Floor.js"
import { FLOOR } from "./Floor.js"
import type { Plan, Unit } from "./Plan.js"
import type { Action, Policy, Rule } from "./Policy.js"
import { read } from "./Reader.js"
import type { GateRequest } from "./Request.js"
import { allCommands, basename } from "./Wrappers.js"

/** The outcome. `rule` is the deciding rule's `file:line`, `"floor"`, or `"default"`. */
export interface Decision {
  readonly action: Action
  readonly rule: string
  readonly reason: string
  /** False when there is no policy file: the machine has no gate configured. */
  readonly configured: boolean
}

/** A rule that matched a unit, and which of its command patterns did (if it has any). */
export interface RuleMatch {
  readonly rule: Rule
  readonly pattern?: string
}

/** How one unit of the request was decided. */
export interface UnitVerdict {
  readonly unit: Unit | { readonly _tag: "Session"; readonly text: string }
  readonly action: Action
  readonly rule: string
  readonly reason: string
  readonly matched: ReadonlyArray<RuleMatch>
}

/** Everything `explain` knows: the plan, the floor, each unit's verdict, and the decision. */
export interface Explanation {
  readonly request: GateRequest
  readonly policyFile: string | undefined
  readonly plan: Plan
  readonly floor: ReadonlyArray<FloorHit>
  readonly units: ReadonlyArray<UnitVerdict>
  readonly decision: Decision
}

const SEVERITY: Record<Action, number> = { allow: 0, ask: 1, deny: 2 }

export const NO_GATE =
  "no permissions.yaml: no gate is configured (keys and users may do anything; guests may exec, open shells and join their link's sessions)"

const emailMatchers = new Map<string, (email: string) => boolean>()
const emailMatches = (glob: string, email: string): boolean => {
  let isMatch = emailMatchers.get(glob)
  if (isMatch === undefined) {
    isMatch = picomatch(glob, { nocase: true, nonegate: true, nobrace: true, noextglob: true, windows: false })
    emailMatchers.set(glob, isMatch)
  }
  return isMatch(email)
}

/** Whether a rule is about this caller and mode (ignoring its commands). */
export const appliesTo = (rule: Rule, request: GateRequest): boolean => {
  const { caller, mode } = request
  if (rule.callers.length > 0 && !rule.callers.includes(caller.kind)) return false
  if (rule.users.length > 0 && (caller.user === undefined || !rule.users.some((g) => emailMatches(g, caller.user!))))
    return false
  if (rule.shares.length > 0 && (caller.shareId === undefined || !rule.shares.includes(caller.shareId))) return false
  return rule.modes.length === 0 || rule.modes.includes(mode)
}

/**
 * The spellings a `deny` or `ask` rule is matched against: the command as written, every command a wrapper in it
 * runs (`env id`, `exec id`, `sudo -u root id`, `nice id`, …), and each of those with its program by base name
 * (`/usr/bin/id`, `./id`). Otherwise `default: allow` plus `deny: "rm *"` would be walked around by `/bin/rm` or
 * `command rm`. `allow` rules still match only the command as written.
 */
const refusedSpellings = (words: ReadonlyArray<ArgWord>): ReadonlyArray<ReadonlyArray<ArgWord>> =>
  allCommands(words).flatMap((command) => {
    const head = command[0]
    if (head === undefined || !head.known || !head.text.includes("/")) return [command]
    return [command, [{ ...head, text: basename(head.text) }, ...command.slice(1)]]
  })

const matchCommand = (rule: Rule, words: ReadonlyArray<ArgWord>): RuleMatch | undefined => {
  if (rule.commands.length === 0) return { rule }
  const spellings = rule.action === "allow" ? [words] : refusedSpellings(words)
  for (const source of rule.commands) {
    const pattern = compileCached(source)
    if (typeof pattern !== "string" && spellings.some((w) => matches(pattern, w))) return { rule, pattern: source }
  }
  return undefined
}

const strongest = (matched: ReadonlyArray<RuleMatch>): RuleMatch | undefined =>
  matched.reduce<RuleMatch | undefined>(
    (best, m) => (best === undefined || SEVERITY[m.rule.action] > SEVERITY[best.rule.action] ? m : best),
    undefined
  )

const byRule = (m: RuleMatch): string =>
  `${m.rule.action} by ${m.rule.source}${m.pattern !== undefined ? ` (${JSON.stringify(m.pattern)})` : " (a rule without command)"}`

const verdict = (policy: Policy, request: GateRequest, unit: UnitVerdict["unit"]): UnitVerdict => {
  const rules = policy.rules.filter((r) => appliesTo(r, request))
  const matched =
    unit._tag === "Command"
      ? rules.flatMap((r) => matchCommand(r, unit.words) ?? [])
      : rules.filter((r) => r.commands.length === 0).map((rule) => ({ rule }))
  const best = strongest(matched)
  if (best !== undefined)
    return { unit, action: best.rule.action, rule: best.rule.source, reason: byRule(best), matched }
  const fallback = policy.defaults[request.caller.kind]
  if (unit._tag === "Hidden" && fallback !== "deny") {
    const guarded = rules.find((r) => r.commands.length > 0 && r.action !== "allow")
    if (guarded !== undefined)
      return {
        unit,
        action: "deny",
        rule: "default",
        reason: `${unit.reason}; the gate cannot read it, and ${guarded.source} ${guarded.action === "deny" ? "denies" : "asks for"} some commands of this caller: only a rule without \`command\` admits it`,
        matched
      }
  }
  const why = unit._tag === "Hidden" ? `${unit.reason}; no rule without \`command\` matches` : "no rule matches"
  return {
    unit,
    action: fallback,
    rule: "default",
    reason: `${why}: default for ${request.caller.kind} is ${fallback}`,
    matched
  }
}

const floorReason = (hit: FloorHit): string =>
  `refused by the floor (${FLOOR.find((f) => f.name === hit.name)?.description ?? hit.name}): ${hit.text}`

/**
 * No policy file: everything is allowed (the floor aside). A guest's attach is allowed too: the relay already
 * limits a guest to the sessions its own link opened, or to the one session the owner shared with `--session`.
 */
const noGate = (_request: GateRequest, unit: UnitVerdict["unit"]): UnitVerdict => ({
  unit,
  action: "allow",
  rule: "default",
  reason: NO_GATE,
  matched: []
})

/** Explains how the gate decides `request` under `policy` (`undefined`: no policy file). */
export const explain = (policy: Policy | undefined, request: GateRequest): Explanation => {
  const plan = read(request)
  const configured = policy !== undefined
  const base = { request, policyFile: policy?.file, plan, floor: plan.floor }
  const firstHit = plan.floor[0]
  if (firstHit !== undefined)
    return {
      ...base,
      units: [],
      decision: { action: "deny", rule: "floor", reason: floorReason(firstHit), configured }
    }
  if (plan.error !== undefined)
    return { ...base, units: [], decision: { action: "deny", rule: "floor", reason: plan.error, configured } }
  const units: ReadonlyArray<UnitVerdict["unit"]> =
    request.mode === "exec" ? plan.units : [{ _tag: "Session", text: `${request.mode} session` }]
  const verdicts = units.map((u) => (policy === undefined ? noGate(request, u) : verdict(policy, request, u)))
  if (verdicts.length === 0)
    return { ...base, units: [], decision: { action: "deny", rule: "floor", reason: "nothing to run", configured } }
  const deciding = verdicts.reduce((a, b) => (SEVERITY[b.action] > SEVERITY[a.action] ? b : a))
  const reason =
    request.mode === "exec" && deciding.action !== "allow"
      ? `${deciding.unit.text}: ${deciding.reason}`
      : deciding.reason
  return { ...base, units: verdicts, decision: { action: deciding.action, rule: deciding.rule, reason, configured } }
}

/** The gate's decision for `request` under `policy` (`undefined`: no policy file). */
export const decide = (policy: Policy | undefined, request: GateRequest): Decision => explain(policy, request).decision
