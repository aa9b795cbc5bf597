/**
 * `explain` as text an operator reads (`cmdop agent permissions explain`), and `check` for a policy file. Guests
 * never see this: it names rules and the policy.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FileSystem from "@effect/platform/FileSystem"
import type { Explanation, UnitVerdict } from "./Decide.js"
import { NO_GATE } from "./Decide.js"
import { FLOOR } from "./Floor.js"
import type { Policy } from "./Policy.js"
import { splitPattern } from "./CommandPattern.js"
import { SHELLS, basename, unwrap } from "./Wrappers.js"
import { PolicyError } from "./PolicyError.js"
import { parsePolicy } from "./PolicyFile.js"

const describeRequest = (e: Explanation): string => {
  const { caller, mode, argv, shell } = e.request
  const who = [caller.kind, caller.user, caller.shareId && `share ${caller.shareId}`].filter(Boolean).join(" ")
  const what = mode === "exec" ? `${shell === true ? "shell line" : "argv"} ${JSON.stringify(argv ?? [])}` : mode
  return `${who}, ${what}`
}

const unitLine = (v: UnitVerdict): string => {
  const kind = v.unit._tag === "Hidden" ? "cannot read" : v.unit._tag === "Session" ? "session" : "command"
  const lines = [`  ${v.action.padEnd(5)} ${kind}: ${v.unit.text}`, `        ${v.reason}`]
  const others = v.matched.filter((m) => m.rule.source !== v.rule)
  for (const m of others)
    lines.push(
      `        also matched: ${m.rule.action} ${m.rule.source}${m.pattern ? ` (${JSON.stringify(m.pattern)})` : ""}`
    )
  return lines.join("\n")
}

/** Renders an explanation: the request, the decision, each unit's verdict, and the floor. */
export const render = (e: Explanation): string => {
  const d = e.decision
  const out = [
    `request:  ${describeRequest(e)}`,
    `policy:   ${e.policyFile ?? NO_GATE}`,
    `decision: ${d.action.toUpperCase()} (rule: ${d.rule})`,
    `reason:   ${d.reason}`
  ]
  if (e.units.length > 0) out.push("each part:", ...e.units.map(unitLine))
  if (e.floor.length > 0) out.push("floor hits:", ...e.floor.map((h) => `  ${h.name}: ${h.text}`))
  out.push(
    "floor (no rule opens these):",
    ...FLOOR.map((f) => `  - ${f.description}`),
    "  - a shell line that does not parse"
  )
  return out.join("\n")
}

/** Checks policy text; the error names the file and line. */
export const checkText = (text: string, file: string): Either.Either<Policy, PolicyError> => parsePolicy(text, file)

/** Reads and checks a policy file. */
export const checkFile = (path: string): Effect.Effect<Policy, PolicyError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError(
        (e) =>
          new PolicyError({
            file: path,
            line: 0,
            problem: `cannot read: ${e.message}`,
            hint: "check the path and its permissions"
          })
      )
    )
    return yield* parsePolicy(text, path)
  })

/** One line for `check`: how many rules and defaults, so an operator sees the file was read as meant. */
export const summary = (policy: Policy): string =>
  `${policy.file}: ok, ${policy.rules.length} rule${policy.rules.length === 1 ? "" : "s"}; default key ${policy.defaults.key}, user ${policy.defaults.user}, guest ${policy.defaults.guest}`

/**
 * Rules that likely allow more than their author meant: a program that runs other programs (`sudo *`, `env *`,
 * `xargs *`, `find *`) or a shell (`bash *`) followed by a bare `*`. Shown by `check`; they are not errors.
 */
export const warnings = (policy: Policy): ReadonlyArray<string> =>
  policy.rules.flatMap((rule) =>
    rule.action === "allow"
      ? rule.commands.flatMap((command) => {
          const words = splitPattern(command)
          if (typeof words === "string" || words.length < 2 || words[words.length - 1] !== "*") return []
          const head = words[0]!
          const inner = unwrap([...words.slice(0, -1), "\u0000"].map((text) => ({ text, known: true })))
          const runsOthers =
            SHELLS.has(basename(head)) ||
            head === "find" ||
            (inner?._tag === "Inner" && inner.commands.some((c) => c[0]?.text === "\u0000"))
          return runsOthers
            ? [`${rule.source}: "${command}" lets ${head} run any command; name the commands instead`]
            : []
        })
      : []
  )
