/**
 * The gate's policy: what `permissions.yaml` says once it is parsed and validated. `PolicyFile` builds a `Policy`
 * from text; `Decide` reads one. Every rule keeps where it was written (`file:line`) so a decision can name it.
 */
import * as Schema from "effect/Schema"

/** Who is asking: the workspace key, a signed-in person, or a share-link guest. */
export const CallerKind = Schema.Literal("key", "user", "guest")
export type CallerKind = typeof CallerKind.Type

/** How the session runs: one command, an interactive login shell, or joining an existing session. */
export const Mode = Schema.Literal("exec", "shell", "attach")
export type Mode = typeof Mode.Type

/** What a rule (or the default) says. Precedence among matching rules: deny > ask > allow. */
export const Action = Schema.Literal("allow", "deny", "ask")
export type Action = typeof Action.Type

const OneOrMany = <A, I>(item: Schema.Schema<A, I>) => Schema.Union(item, Schema.Array(item))

/** The `default:` map: one action per caller kind. Missing kinds take the built-in defaults. */
export const DefaultsInput = Schema.Struct({
  key: Schema.optional(Action),
  user: Schema.optional(Action),
  guest: Schema.optional(Action)
})

/** One entry of `rules:` as written. */
export const RuleInput = Schema.Struct({
  action: Action,
  caller: Schema.optional(OneOrMany(CallerKind)),
  user: Schema.optional(OneOrMany(Schema.NonEmptyTrimmedString)),
  share: Schema.optional(OneOrMany(Schema.NonEmptyTrimmedString)),
  mode: Schema.optional(OneOrMany(Mode)),
  command: Schema.optional(OneOrMany(Schema.NonEmptyTrimmedString)),
  note: Schema.optional(Schema.String)
})
export type RuleInput = typeof RuleInput.Type

/** The whole file as written. Unknown keys are errors (a typo must not silently widen a policy). */
export const PolicyInput = Schema.Struct({
  default: Schema.optional(DefaultsInput),
  rules: Schema.optional(Schema.Array(RuleInput))
})
export type PolicyInput = typeof PolicyInput.Type

/** A validated rule. Empty lists mean "any". */
export interface Rule {
  readonly action: Action
  /** `file:line` of the rule's `- action:` entry, used in decisions and audit. */
  readonly source: string
  readonly callers: ReadonlyArray<CallerKind>
  /** Email globs; a rule with any implies `caller: user`. */
  readonly users: ReadonlyArray<string>
  /** Share link ids; a rule with any implies `caller: guest`. */
  readonly shares: ReadonlyArray<string>
  readonly modes: ReadonlyArray<Mode>
  /** Command patterns (see `CommandPattern`); empty means the rule speaks about every command, readable or not. */
  readonly commands: ReadonlyArray<string>
  readonly note?: string
}

/** A validated policy. `file` is the path it came from (for messages). */
export interface Policy {
  readonly file: string
  readonly defaults: Readonly<Record<CallerKind, Action>>
  readonly rules: ReadonlyArray<Rule>
}

/** Defaults when the file does not name a caller kind: keys and users allowed, guests denied. */
export const FILE_DEFAULTS: Readonly<Record<CallerKind, Action>> = { key: "allow", user: "allow", guest: "deny" }
