/**
 * Reading `permissions.yaml`: YAML (the `yaml` library, keeping line numbers) validated by the `Policy` schemas,
 * then checked for rules that cannot mean what they say. Every failure is a `PolicyError` naming the line.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { LineCounter, isMap, isNode, parseDocument } from "yaml"
import type { Document } from "yaml"
import { compileCached } from "./CommandPattern.js"
import type { Policy, Rule, RuleInput } from "./Policy.js"
import { FILE_DEFAULTS, PolicyInput } from "./Policy.js"
import { PolicyError } from "./PolicyError.js"

const decodeInput = Schema.decodeUnknownEither(PolicyInput, { onExcessProperty: "error", errors: "first" })

const HINTS: Record<string, string> = {
  action: "action is one of allow, deny, ask",
  caller: "caller is key, user or guest (or a list of them)",
  mode: "mode is exec, shell or attach (or a list of them); omit it for any",
  command: 'command is a pattern like "ls *" or a list of them',
  user: 'user is an email glob like "*@example.com"',
  share: "share is a share link id",
  default: "default maps key, user and guest to allow, deny or ask",
  rules: "rules is a list of entries, each starting with `- action: …`"
}

const hintFor = (path: ReadonlyArray<PropertyKey>): string => {
  for (let i = path.length - 1; i >= 0; i--) {
    const hint = HINTS[String(path[i])]
    if (hint !== undefined) return hint
  }
  return "top-level keys are `default` and `rules`; see docs/permissions.md"
}

const lineOf = (doc: Document, counter: LineCounter, path: ReadonlyArray<PropertyKey>): number => {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as Array<unknown>, true)
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line
  }
  return 1
}

/** Turns a parse issue into the words a person reads: `rules[0].action: "allw" is not valid`. */
const describe = (issue: ParseResult.ArrayFormatterIssue): string => {
  const where = issue.path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join("")
  if (issue._tag === "Unexpected") return `${where}: unknown key`
  if (issue._tag === "Missing") return `${where}: is missing`
  const actual = /actual (.+)$/.exec(issue.message.split("\n").pop() ?? "")?.[1]
  return actual !== undefined ? `${where}: ${actual} is not valid` : `${where}: ${issue.message.split("\n")[0]}`
}

const KEYS_HINT: Record<string, string> = {
  rules: "rule keys are action, caller, user, share, mode, command, note",
  default: "default keys are key, user, guest"
}

const hintForIssue = (issue: ParseResult.ArrayFormatterIssue): string =>
  issue._tag === "Unexpected"
    ? (KEYS_HINT[String(issue.path[0])] ?? "top-level keys are default and rules")
    : hintFor(issue.path)

const toRule = (input: RuleInput, source: string): Rule => {
  const list = <A>(value: A | ReadonlyArray<A> | undefined): ReadonlyArray<A> =>
    value === undefined ? [] : Array.isArray(value) ? value : [value as A]
  const users = list(input.user)
  const shares = list(input.share)
  const callers = list(input.caller)
  return {
    action: input.action,
    source,
    callers: callers.length > 0 ? callers : users.length > 0 ? ["user"] : shares.length > 0 ? ["guest"] : [],
    users,
    shares,
    modes: list(input.mode),
    commands: list(input.command),
    ...(input.note !== undefined ? { note: input.note } : {})
  }
}

/** A rule that parses but cannot mean what it says; `undefined` when it is fine. */
const ruleProblem = (rule: Rule): { readonly key: string; readonly problem: string } | undefined => {
  if (rule.users.length > 0 && rule.callers.some((c) => c !== "user"))
    return { key: "user", problem: "`user` only applies to caller user" }
  if (rule.shares.length > 0 && rule.callers.some((c) => c !== "guest"))
    return { key: "share", problem: "`share` only applies to caller guest" }
  if (rule.commands.length > 0 && rule.modes.length > 0 && rule.modes.some((m) => m !== "exec"))
    return { key: "command", problem: "`command` only applies to mode exec (shells and attach are decided as a whole)" }
  for (const command of rule.commands) {
    const compiled = compileCached(command)
    if (typeof compiled === "string")
      return { key: "command", problem: `command ${JSON.stringify(command)}: ${compiled}` }
  }
  return undefined
}

/** Parses and validates policy text. `file` names the source in messages and in each rule's `file:line`. */
export const parsePolicy = (text: string, file: string): Either.Either<Policy, PolicyError> => {
  // An empty file is not a policy with no rules: it is what a reader sees mid-write (`cp` onto it, editors that
  // truncate then write). Taken as a policy it would drop every rule; as an error, the last good policy stays.
  if (text.trim() === "")
    return Either.left(
      new PolicyError({
        file,
        line: 0,
        problem: "the file is empty",
        hint: "write the policy into it (default/rules; see docs/permissions.md), or remove the file and restart the agent to run without a gate"
      })
    )
  const counter = new LineCounter()
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true })
  const fail = (line: number, problem: string, hint: string) =>
    Either.left(new PolicyError({ file, line, problem, hint }))
  const yamlError = doc.errors[0]
  if (yamlError !== undefined) {
    const problem = yamlError.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")
    return fail(counter.linePos(yamlError.pos[0]).line, `not valid YAML: ${problem}`, "check indentation and quoting")
  }
  const decoded = decodeInput(doc.toJS() ?? {})
  if (Either.isLeft(decoded)) {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]!
    return fail(lineOf(doc, counter, issue.path), describe(issue), hintForIssue(issue))
  }
  const rules: Array<Rule> = []
  const ruleNodes = doc.getIn(["rules"], true)
  for (const [i, input] of (decoded.right.rules ?? []).entries()) {
    const node = isNode(ruleNodes) && "items" in ruleNodes ? (ruleNodes.items as Array<unknown>)[i] : undefined
    const line = isMap(node) && node.range ? counter.linePos(node.range[0]).line : lineOf(doc, counter, ["rules", i])
    const rule = toRule(input, `${file}:${line}`)
    const problem = ruleProblem(rule)
    if (problem !== undefined)
      return fail(lineOf(doc, counter, ["rules", i, problem.key]), problem.problem, HINTS[problem.key]!)
    rules.push(rule)
  }
  const given = decoded.right.default ?? {}
  const defaults = {
    key: given.key ?? FILE_DEFAULTS.key,
    user: given.user ?? FILE_DEFAULTS.user,
    guest: given.guest ?? FILE_DEFAULTS.guest
  }
  return Either.right({ file, defaults, rules })
}
