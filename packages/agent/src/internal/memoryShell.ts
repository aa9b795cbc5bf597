/**
 * `sh -c SCRIPT [NAME ARG…]` (or a script on stdin: `sh`, `sh -l`, `sh -s ARG…`) for the in-memory process runner:
 * a small POSIX-shell subset, enough for the one-liners tests and exec sessions send. It knows command lists (`;`,
 * newlines, `&&`, `||`), single and double quotes, backslash escapes, `$NAME`, `${NAME}`, `${NAME:-default}`, `$$`,
 * `$?`, the positional `$0`…`$9`, `$#`, `$@` and `$*`, `$(( arithmetic ))`, assignments (`X=1`, `X=1 cmd`), the
 * redirections `>&2`, `1>&2`, `2>&1`, `>/dev/null` and `2>/dev/null`, and the builtins `exit`, `exec`, `kill`,
 * `export` and `:`. Anything else (pipes,
 * background jobs, subshells, command substitution, files) is refused with exit 2 and a message naming it, so a
 * test never passes on a script the twin only half understood.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as os from "node:os"
import { evaluate } from "./memoryArithmetic.js"
import { baseName, type Io, type Program, readAll, Signalled } from "./memoryPrograms.js"

type Part =
  | { readonly text: string }
  | { readonly variable: string; readonly fallback?: { readonly text: string; readonly ifEmpty: boolean } }
  | { readonly arithmetic: string }
interface Word {
  readonly parts: ReadonlyArray<Part>
  /** Whether any part was quoted: a quoted empty word stays an (empty) argument. */
  readonly quoted: boolean
}
type Sink = "out" | "err" | "null"
interface Redirect {
  readonly fd: 1 | 2
  readonly to: Sink | "dup1" | "dup2"
}
interface Command {
  readonly words: ReadonlyArray<Word>
  readonly redirects: ReadonlyArray<Redirect>
}
type Op = ";" | "&&" | "||"
interface Step {
  /** How this command joins the one before it. */
  readonly op: Op
  readonly command: Command
}

class Unsupported extends Data.TaggedError("Unsupported")<{ readonly what: string }> {}

const SUPPORTED = "; && || quotes $VAR ${VAR:-x} $$ $? $1 $@ $((…)) >&2 2>&1 >/dev/null"

/** Splits the script into steps; fails on syntax the twin does not speak. */
export const parse = (script: string): Effect.Effect<ReadonlyArray<Step>, Unsupported> =>
  Effect.try({
    try: () => parseSync(script),
    catch: (e) => (e instanceof Unsupported ? e : new Unsupported({ what: String(e) }))
  })

const parseSync = (script: string): ReadonlyArray<Step> => {
  const steps: Array<Step> = []
  let words: Array<Word> = []
  let redirects: Array<Redirect> = []
  let op: Op = ";"
  let i = 0
  const endCommand = (next: Op) => {
    if (words.length > 0 || redirects.length > 0) steps.push({ op, command: { words, redirects } })
    else if (next !== ";") throw new Unsupported({ what: `'${next}' with no command before it` })
    words = []
    redirects = []
    op = next
  }
  while (i < script.length) {
    const c = script[i]!
    const rest = script.slice(i)
    if (c === " " || c === "\t") i++
    else if (c === "#") i = script.indexOf("\n", i) < 0 ? script.length : script.indexOf("\n", i)
    else if (c === ";" || c === "\n") (endCommand(";"), i++)
    else if (rest.startsWith("&&") || rest.startsWith("||")) (endCommand(rest.slice(0, 2) as Op), (i += 2))
    else if (/^(?:[12]?>&[12]|[12]?>\s*\/dev\/null(?=[\s;&|]|$))/.test(rest)) {
      const m = /^([12]?)>(&[12]|\s*\/dev\/null)/.exec(rest)!
      const fd = m[1] === "2" ? 2 : 1
      const target = m[2]!.trim()
      redirects.push({ fd, to: target === "&1" ? "dup1" : target === "&2" ? "dup2" : "null" })
      i += m[0].length
    } else if ("|&()<>`{}".includes(c)) throw new Unsupported({ what: `'${c}'` })
    else {
      const [word, next] = readWord(script, i)
      words.push(word)
      i = next
    }
  }
  endCommand(";")
  return steps
}

/** Reads one word from `start`: quotes, escapes and `$` expansions, up to an unquoted separator. */
const readWord = (s: string, start: number): readonly [Word, number] => {
  const parts: Array<Part> = []
  let quoted = false
  let i = start
  const text = (t: string) => parts.push({ text: t })
  while (i < s.length && !" \t\n;|&()<>`".includes(s[i]!)) {
    const c = s[i]!
    if (c === "'") {
      const end = s.indexOf("'", i + 1)
      if (end < 0) throw new Unsupported({ what: "an unterminated ' quote" })
      text(s.slice(i + 1, end))
      quoted = true
      i = end + 1
    } else if (c === '"') {
      quoted = true
      i++
      while (s[i] !== '"') {
        if (i >= s.length) throw new Unsupported({ what: 'an unterminated " quote' })
        if (s[i] === "\\" && '$`"\\\n'.includes(s[i + 1] ?? "")) (text(s[i + 1]!), (i += 2))
        else if (s[i] === "$") i = readVariable(s, i, parts)
        else if (s[i] === "`") throw new Unsupported({ what: "'`'" })
        else (text(s[i]!), i++)
      }
      i++
    } else if (c === "\\") (text(s[i + 1] ?? ""), (i += 2))
    else if (c === "$") i = readVariable(s, i, parts)
    else (text(c), i++)
  }
  return [{ parts, quoted }, i]
}

/** Reads `$NAME`, `${NAME[:-default]}`, `$$`, `$?`, `$1`, `$@`, `$((…))`… at `i` into `parts`; a lone `$` is literal. */
const readVariable = (s: string, i: number, parts: Array<Part>): number => {
  const rest = s.slice(i + 1)
  if (rest.startsWith("((")) {
    const end = rest.indexOf("))")
    if (end < 0) throw new Unsupported({ what: "an unterminated $((" })
    parts.push({ arithmetic: rest.slice(2, end) })
    return i + 1 + end + 2
  }
  if (rest.startsWith("(")) throw new Unsupported({ what: "'$('" })
  const braced = /^\{([A-Za-z_][A-Za-z0-9_]*|[0-9#@*?$])(?:(:?)-([^}]*))?\}/.exec(rest)
  if (braced !== null) {
    const fallback = braced[3] === undefined ? {} : { fallback: { text: braced[3], ifEmpty: braced[2] === ":" } }
    parts.push({ variable: braced[1]!, ...fallback })
    return i + 1 + braced[0].length
  }
  const m = /^(?:[A-Za-z_][A-Za-z0-9_]*|[0-9#@*?$])/.exec(rest)
  if (m === null) {
    if (rest.startsWith("{")) throw new Unsupported({ what: "'${' other than ${NAME} and ${NAME:-default}" })
    parts.push({ text: "$" })
    return i + 1
  }
  parts.push({ variable: m[0] })
  return i + 1 + m[0].length
}

/** The interpreter's state: its variables (the environment commands inherit), `$0`, `$1…` and the last status. */
interface Shell {
  readonly vars: Record<string, string>
  readonly name: string
  readonly args: ReadonlyArray<string>
  status: number
}

class Exit extends Data.TaggedError("Exit")<{ readonly status: number }> {}

const lookupVariable = (shell: Shell, io: Io, name: string): string | undefined => {
  if (name === "$") return String(io.pid)
  if (name === "?") return String(shell.status)
  if (name === "#") return String(shell.args.length)
  if (name === "@" || name === "*") return shell.args.join(" ")
  if (name === "0") return shell.name
  if (/^[1-9]$/.test(name)) return shell.args[Number(name) - 1]
  return shell.vars[name]
}

/** The words' fields after expansion; `"$@"` alone is one field per argument. Fails on bad arithmetic. */
const expand = (shell: Shell, io: Io, words: ReadonlyArray<Word>): Effect.Effect<Array<string>, Exit> =>
  Effect.suspend(() => {
    const fields: Array<string> = []
    for (const word of words) {
      const only = word.parts.length === 1 ? word.parts[0]! : undefined
      if (only !== undefined && "variable" in only && only.variable === "@" && only.fallback === undefined) {
        fields.push(...(word.quoted ? shell.args : shell.args.filter((a) => a !== "")))
        continue
      }
      let value = ""
      for (const p of word.parts) {
        if ("text" in p) value += p.text
        else if ("arithmetic" in p) {
          const result = evaluate(p.arithmetic, (name) => lookupVariable(shell, io, name) ?? "")
          if ("error" in result) return Effect.zipRight(io.stderr(`sh: ${result.error}\n`), new Exit({ status: 2 }))
          value += String(result.value)
        } else {
          const found = lookupVariable(shell, io, p.variable)
          const missing = found === undefined || (p.fallback?.ifEmpty === true && found === "")
          value += missing && p.fallback !== undefined ? p.fallback.text : (found ?? "")
        }
      }
      if (value !== "" || word.quoted) fields.push(value)
    }
    return Effect.succeed(fields)
  })

/** The io a command runs on once its redirections are applied, left to right as the shell applies them. */
const redirected = (io: Io, redirects: ReadonlyArray<Redirect>): Io => {
  const sinks: Record<1 | 2, Sink> = { 1: "out", 2: "err" }
  for (const r of redirects) sinks[r.fd] = r.to === "dup1" ? sinks[1] : r.to === "dup2" ? sinks[2] : r.to
  const write = (sink: Sink) => (sink === "out" ? io.stdout : sink === "err" ? io.stderr : () => Effect.void)
  return { ...io, stdout: write(sinks[1]), stderr: write(sinks[2]) }
}

const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s

/** Runs one simple command: assignments, then a builtin or a program. */
const runCommand = (shell: Shell, parent: Io, command: Command): Effect.Effect<number, Signalled | Exit> =>
  Effect.flatMap(expand(shell, parent, command.words), (argv): Effect.Effect<number, Signalled | Exit> => {
    const io = redirected(parent, command.redirects)
    const assigned: Record<string, string> = {}
    while (argv.length > 0 && ASSIGNMENT.test(argv[0]!)) {
      const [, name, value] = ASSIGNMENT.exec(argv.shift()!)!
      assigned[name!] = value!
    }
    const [name, ...args] = argv
    if (name === undefined) {
      Object.assign(shell.vars, assigned)
      return Effect.succeed(0)
    }
    const env = { ...shell.vars, ...assigned }
    switch (name) {
      case ":":
        return Effect.succeed(0)
      case "exit":
        return Effect.fail(new Exit({ status: args[0] === undefined ? shell.status : Number(args[0]) || 0 }))
      case "export":
        for (const a of args) {
          const m = ASSIGNMENT.exec(a)
          if (m) shell.vars[m[1]!] = m[2]!
        }
        return Effect.succeed(0)
      case "kill":
        return kill({ ...io, args, env })
      case "exec":
        // Replaces the shell: the command's status is the shell's, and nothing after it runs.
        return args[0] === undefined
          ? Effect.succeed(0)
          : Effect.flatMap(runProgram(io, args[0], args.slice(1), env), (status) => new Exit({ status }))
    }
    return runProgram(io, name, args, env)
  })

const runProgram = (io: Io, name: string, args: ReadonlyArray<string>, env: Record<string, string>) => {
  const program = io.lookup(name)
  if (program === undefined) return Effect.as(io.stderr(`sh: ${name}: not found\n`), 127)
  return program({ ...io, name: baseName(name), args, env })
}

/** `kill [-SIG | -s SIG | -N] PID…`: only the shell's own pid (`$$`) exists in memory. */
const kill: Program = (io) =>
  Effect.gen(function* () {
    let args = io.args
    let name = "TERM"
    if (args[0] === "-s" && args[1] !== undefined) [name, args] = [args[1], args.slice(2)]
    else if (args[0]?.startsWith("-")) [name, args] = [args[0].slice(1), args.slice(1)]
    const signal = signalByName(name)
    if (signal === undefined) return yield* Effect.as(io.stderr(`sh: kill: ${name}: invalid signal\n`), 1)
    let status = 0
    for (const pid of args) {
      if (pid !== String(io.pid)) {
        yield* io.stderr(`sh: kill: (${pid}) - No such process\n`)
        status = 1
      } else if (signal !== 0 && !IGNORED_BY_DEFAULT.has(signal)) {
        return yield* new Signalled({ signal })
      }
    }
    return status
  })

/** Signals whose default action is to do nothing; the twin models no job control either (STOP, TSTP, …). */
export const IGNORED_BY_DEFAULT: ReadonlySet<string> = new Set([
  "SIGCHLD",
  "SIGCONT",
  "SIGURG",
  "SIGWINCH",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU"
])

/** `TERM`, `SIGTERM`, `15` → `SIGTERM`; `0` → 0 (the existence probe). */
const signalByName = (name: string): NodeJS.Signals | 0 | undefined => {
  if (name === "0") return 0
  if (/^\d+$/.test(name)) {
    const n = Number(name)
    return (Object.keys(os.constants.signals) as Array<NodeJS.Signals>).find((s) => os.constants.signals[s] === n)
  }
  const full = name.toUpperCase().startsWith("SIG") ? name.toUpperCase() : `SIG${name.toUpperCase()}`
  return full in os.constants.signals ? (full as NodeJS.Signals) : undefined
}

/**
 * `sh -c SCRIPT [NAME ARG…]`, or `sh [-l] [-s ARG…]` with the script on stdin (as ssh runs a login shell without a
 * terminal); the shell's status is its last command's, or what `exit` says.
 */
export const shell: Program = (io) =>
  Effect.gen(function* () {
    const options = io.args.findIndex((a) => !/^-[lsie]*$/.test(a) || a === "-c")
    const flags = io.args.slice(0, options < 0 ? io.args.length : options).join("")
    const rest = options < 0 ? [] : io.args.slice(options)
    let source: { script: string; name: string; args: ReadonlyArray<string> }
    if (rest[0] === "-c") {
      if (rest[1] === undefined) return yield* Effect.as(io.stderr(`${io.name}: -c requires an argument\n`), 2)
      source = { script: rest[1], name: rest[2] ?? io.name, args: rest.slice(3) }
    } else if (rest.length === 0 || flags.includes("s")) {
      source = { script: Buffer.from(yield* readAll(io)).toString("utf8"), name: io.name, args: rest }
    } else {
      return yield* Effect.as(io.stderr(`${io.name}: ${rest[0]}: script files are not supported in memory\n`), 127)
    }
    const parsed = yield* Effect.either(parse(source.script))
    if (parsed._tag === "Left") {
      const message = `${io.name}: ${parsed.left.what} is not supported in memory (supported: ${SUPPORTED})\n`
      return yield* Effect.as(io.stderr(message), 2)
    }
    const state: Shell = { vars: { ...io.env }, name: source.name, args: source.args, status: 0 }
    const run = Effect.forEach(
      parsed.right,
      ({ op, command }) =>
        (op === "&&" && state.status !== 0) || (op === "||" && state.status === 0)
          ? Effect.void
          : Effect.map(runCommand(state, io, command), (status) => void (state.status = status)),
      { discard: true }
    )
    return yield* run.pipe(
      Effect.as(state.status),
      Effect.catchTag("Exit", (e) => Effect.succeed(e.status)),
      Effect.map((status) => ((status % 256) + 256) % 256)
    )
  })
