/**
 * Reads shell code and argv into a `Plan`: every simple command anywhere in it (after `;`, `&&`, `||`, `|`, `&`,
 * inside `$(…)`, backticks, `<(…)`, subshells, functions, here-doc bodies), every construct the gate cannot see
 * through, and floor hits. Nested `sh -c '…'` scripts are read too when their script is a literal.
 */
import type { FloorHit } from "../Floor.js"
import { checkCommand, checkRedirect } from "../Floor.js"
import type { Unit } from "../Plan.js"
import { HIDING, SHELLS, basename, unwrap } from "../Wrappers.js"
import type { Node } from "./mvdan.js"
import { Op, ParserNotLoaded, ShellSyntaxError, get, isNil, items, nodeType, text as goText, walk } from "./mvdan.js"
import type { Word } from "./shellWords.js"
import { readWord, sourceOf } from "./shellWords.js"

const MAX_DEPTH = 4

/** Variables a caller may set without the gate treating the run as arbitrary: they do not choose what runs. */
const SAFE_VARIABLES = /^(LANG|LANGUAGE|LC_[A-Z]+|TERM|TZ|COLUMNS|LINES|NO_COLOR|FORCE_COLOR|CI)$/

const HARMLESS_TARGETS = /^(\/dev\/null|\/dev\/stdout|\/dev\/stderr|\/dev\/tty|\/dev\/fd\/[012])$/

/** Collects units and floor hits while reading. */
export class PlanBuilder {
  readonly units: Array<Unit> = []
  readonly floor: Array<FloorHit> = []
  hidden(text: string, reason: string): void {
    this.units.push({ _tag: "Hidden", text, reason })
  }
}

/** Whether a caller- or script-set variable is one the gate lets through. */
export const isSafeVariable = (name: string): boolean => SAFE_VARIABLES.test(name)

const joined = (words: ReadonlyArray<Word>) => words.map((w) => w.text).join(" ")

/** For `sh … -c SCRIPT …`: the script word, or why the gate cannot read what the shell runs. */
const shellScript = (argv: ReadonlyArray<Word>): Word | string => {
  const name = basename(argv[0]!.text)
  let hasC = false
  let i = 1
  for (; i < argv.length; i++) {
    const w = argv[i]!
    if (!w.known) return `${name}: an option the gate cannot read`
    if (w.text === "--" || w.text === "-") {
      i++
      break
    }
    if (w.text === "--rcfile" || w.text === "--init-file") return `${name} ${w.text} runs a file the gate cannot read`
    if (/^[-+][A-Za-z]+$/.test(w.text)) {
      if (w.text.startsWith("-") && w.text.includes("c")) hasC = true
      if (/[oO]$/.test(w.text)) i++
    } else if (!w.text.startsWith("--")) break
  }
  if (!hasC) return `${name} without -c runs commands from stdin, a here-doc or a file the gate cannot read`
  const script = argv[i]
  if (script === undefined) return `${name} -c without a script`
  if (!script.known || script.glob) return `${name} -c with a script that is not a literal`
  return script
}

/**
 * Looks inside one command: hiding builtins, shells (their script is read), wrappers (what they run is inspected
 * the same way). Returns whether the command is a shell whose script replaced it.
 */
const inspect = (argv: ReadonlyArray<Word>, depth: number, out: PlanBuilder): boolean => {
  const head = argv[0]!
  if (!head.known || head.glob) {
    out.hidden(joined(argv), "the command name is only known when it runs")
    return true
  }
  const name = basename(head.text)
  const hiding = HIDING[name]
  if (hiding !== undefined) {
    out.hidden(joined(argv), hiding)
    return true
  }
  if (SHELLS.has(name)) {
    const script = shellScript(argv)
    if (typeof script === "string") out.hidden(joined(argv), script)
    else if (depth >= MAX_DEPTH) out.hidden(joined(argv), "shells nested too deep to read")
    else readScriptInto(script.text, depth + 1, out)
    return true
  }
  const inner = unwrap(argv)
  if (inner?._tag === "Hidden") out.hidden(joined(argv), inner.reason)
  else if (inner !== undefined && depth >= MAX_DEPTH) out.hidden(joined(argv), "wrappers nested too deep to read")
  else if (inner !== undefined)
    for (const command of inner.commands) {
      // `unwrap` slices the same word objects, so each keeps its `glob` flag.
      if (command.length > 0) inspect(command as ReadonlyArray<Word>, depth + 1, out)
    }
  return false
}

/** Adds the units for one simple command given as words (argv, or a command read from a shell line). */
export const readCommand = (argv: ReadonlyArray<Word>, depth: number, out: PlanBuilder): void => {
  if (argv.length === 0) return
  out.floor.push(...checkCommand(argv))
  const inspected = new PlanBuilder()
  const isShell = inspect(argv, depth, inspected)
  const directShell = isShell && SHELLS.has(basename(argv[0]!.text)) && argv[0]!.known
  if (!directShell && !inspected.units.some((u) => u.text === joined(argv) && u._tag === "Hidden"))
    out.units.push({ _tag: "Command", words: argv.map((w) => ({ text: w.text, known: w.known })), text: joined(argv) })
  out.units.push(...inspected.units)
  out.floor.push(...inspected.floor)
}

const redirect = (src: Buffer, r: Node, out: PlanBuilder): void => {
  const op = Number(r.Op)
  if (op === Op.Hdoc || op === Op.DashHdoc || op === Op.WordHdoc || isNil(r.Word)) return
  const target = readWord(src, r.Word)
  const text = sourceOf(src, r)
  if ((op === Op.DplIn || op === Op.DplOut) && /^(\d+|-)$/.test(target.text)) return
  if (target.known && HARMLESS_TARGETS.test(target.text)) return
  if (op === Op.RdrIn) {
    out.hidden(text, "reading a file by redirection (only a rule without `command` admits it)")
    return
  }
  const hit = target.known ? checkRedirect(target.text, text.replace(/\s*\S+$/, "")) : undefined
  if (hit !== undefined) out.floor.push(hit)
  out.hidden(text, "writing a file by redirection (only a rule without `command` admits it)")
}

const isCallOf = (stmt: Node, name: string): boolean => {
  if (isNil(stmt) || isNil(stmt.Cmd) || nodeType(stmt.Cmd) !== "CallExpr") return false
  const first = items(stmt.Cmd.Args)[0]
  const parts = first === undefined ? [] : items(first.Parts)
  return parts.length === 1 && nodeType(parts[0]!) === "Lit" && goText(parts[0]!.Value) === name
}

/** A function that runs itself in the background or in a pipe: `:(){ :|:& };:` under any name. */
const isForkBomb = (decl: Node): boolean => {
  const name = goText(decl.Name.Value)
  let found = false
  walk(decl.Body, (node) => {
    if (found || nodeType(node) !== "Stmt") return
    const cmd = node.Cmd
    if (node.Background === true && isCallOf(node, name)) found = true
    if (!isNil(cmd) && nodeType(cmd) === "BinaryCmd" && (cmd.Op === Op.Pipe || cmd.Op === Op.PipeAll))
      found ||= isCallOf(cmd.X, name) || isCallOf(cmd.Y, name)
  })
  return found
}

const ARITHMETIC_REASON = "arithmetic on variables (bash runs code hidden in their values)"

/** Arithmetic that names a variable can run code hidden in that variable's value; plain numbers cannot. */
const arithmetic = (src: Buffer, node: Node, out: PlanBuilder): void => {
  const text = sourceOf(src, node)
  const inner = text.replace(/^(let\b|\$?\(\(|\[\[)/, "").replace(/(\)\)|\]\])$/, "")
  if (/[A-Za-z_$`]/.test(inner)) out.hidden(text, ARITHMETIC_REASON)
}

const assignment = (src: Buffer, assign: Node, prefix: boolean, out: PlanBuilder): void => {
  const name = isNil(assign.Name) ? "" : goText(assign.Name.Value)
  if (name === "") return
  if (!isNil(assign.Index)) arithmetic(src, assign.Index, out)
  if (assign.Naked === true && !prefix) return
  if (!isSafeVariable(name))
    out.hidden(
      sourceOf(src, assign),
      prefix ? `runs with ${name} set, which can change what runs` : `sets ${name}, which can change what runs`
    )
}

const paramExp = (src: Buffer, node: Node, out: PlanBuilder): void => {
  if (!isNil(node.Index) && !/^(\d+|@|\*)$/.test(sourceOf(src, node.Index)))
    out.hidden(sourceOf(src, node), ARITHMETIC_REASON)
  if (!isNil(node.Slice))
    for (const part of [node.Slice.Offset, node.Slice.Length]) if (!isNil(part)) arithmetic(src, part, out)
  if (
    !isNil(node.Exp) &&
    node.Exp.Op === Op.Transform &&
    !isNil(node.Exp.Word) &&
    /P/.test(goText(node.Exp.Word.Lit()))
  )
    out.hidden(sourceOf(src, node), "${…@P} runs command substitutions hidden in a value")
}

/** Visits one node of a parsed script. */
const visit = (src: Buffer, node: Node, depth: number, out: PlanBuilder): void => {
  switch (nodeType(node)) {
    case "CallExpr": {
      const args = items(node.Args)
      for (const a of items(node.Assigns)) assignment(src, a, args.length > 0, out)
      readCommand(
        args.map((w) => readWord(src, w)),
        depth,
        out
      )
      return
    }
    case "Stmt":
      for (const r of items(node.Redirs)) redirect(src, r, out)
      return
    case "FuncDecl":
      if (isForkBomb(node)) out.floor.push({ name: "fork-bomb", text: sourceOf(src, node) })
      return
    case "DeclClause":
      for (const a of items(node.Args)) assignment(src, a, false, out)
      return
    case "ArithmCmd":
    case "ArithmExp":
    case "LetClause":
    case "CStyleLoop":
      return arithmetic(src, node, out)
    case "TestClause":
      if (/\s-(eq|ne|lt|le|gt|ge)\s/.test(sourceOf(src, node))) out.hidden(sourceOf(src, node), ARITHMETIC_REASON)
      return
    case "ParamExp":
      return paramExp(src, node, out)
    case "ExtGlob":
      // bash reads `*(…)` as a pattern, but the line runs in the agent's `$SHELL`: zsh reads it as a glob
      // qualifier, and `*(e:id:)` runs `id` for each file.
      out.hidden(sourceOf(src, node), "an extended glob `*(…)` (zsh runs code in glob qualifiers: `*(e:…:)`)")
      return
  }
}

/** Parses `script` and adds its units; a parse error throws `ShellSyntaxError`. */
export const readScriptInto = (script: string, depth: number, out: PlanBuilder): void => {
  const file = get().parse(script)
  const src = Buffer.from(script, "utf8")
  walk(file, (node) => visit(src, node, depth, out))
}

export { ParserNotLoaded, ShellSyntaxError }
