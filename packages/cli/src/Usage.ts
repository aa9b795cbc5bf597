/**
 * Argv checked against the command table before @effect/cli parses it, so every usage error says which level it
 * is about, repeats what was typed, suggests the nearest command or flag and points at that level's `--help`:
 * unknown subcommands, unknown flags, flags missing their value or given one they do not take (not one of their
 * choices, not a whole number), stray words, a required argument missing. Exit code 2. (@effect/cli's own messages
 * for these name no flag and end in a blank line.)
 */
import * as Nearest from "@cmdop/domain/Nearest"
import { CliError, ExitCode } from "./CliError.js"
import * as Table from "./CommandTable.js"
import * as SshHabits from "./SshHabits.js"

const { nearest } = Nearest

const usage = (message: string) => new CliError({ message, exitCode: ExitCode.usage })

/** The node argv names and the command words leading to it (`["connect", "exec"]`). */
export const locate = (
  args: ReadonlyArray<string>
): { readonly node: Table.Node; readonly path: ReadonlyArray<string> } => {
  let node = Table.root
  const path: Array<string> = []
  for (const a of args) {
    if (a === "--") break
    if (a.startsWith("-")) continue
    const next = Table.child(node, a)
    if (next === undefined) break
    node = next
    path.push(next.name)
  }
  return { node, path }
}

/** The first usage error in `args` (without `node` and the script), or undefined when the words fit the table. */
export const check = (args: ReadonlyArray<string>): CliError | undefined => {
  let node = Table.root
  const path = ["cmdop"]
  const positionals: Array<string> = []
  const where = () => path.join(" ")
  /** The level, as the user typed its last word ("connect", "exec", "workspace"). */
  const level = () => path[path.length - 1]!
  const helpHint = () => `; see "${where()} --help"`
  /** Flags given so far, per level: no flag may be repeated (@effect/cli's word for it is "unknown argument"). */
  const given = new Set<string>()
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === "--") return undefined
    if (a.startsWith("-") && a !== "-") {
      const f = Table.flag(node, a)
      if (f === undefined) {
        const names = (node.flags ?? []).flatMap((x) => (x.alias ? [x.name, x.alias] : [x.name]))
        const habit = SshHabits.hint(a)
        if (habit !== undefined) return usage(`unknown option ${a} for ${level()}: ${habit}${helpHint()}`)
        const guess = SshHabits.isShort(a)
          ? undefined
          : (partOf(a.split("=")[0]!, names) ?? nearest(a.split("=")[0]!, names))
        return usage(`unknown option ${a} for ${level()}${guess ? ` (did you mean ${guess}?)` : ""}${helpHint()}`)
      }
      if (f.name === "--help") return undefined
      const key = `${where()} ${f.name}`
      if (given.has(key)) return usage(`${f.name} is given twice for ${level()}: keep one${helpHint()}`)
      given.add(key)
      if (f.value !== undefined && !a.includes("=")) {
        const v = args[i + 1]
        if (v === undefined || (v.startsWith("--") && v.length > 2))
          return usage(`${f.name} needs a value (${f.name} ${f.value}) for ${level()}${helpHint()}`)
        i += 1
      }
      const value = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[i]!
      const bad = f.value === undefined ? undefined : badValue(f, value)
      if (bad !== undefined) return usage(`${bad} for ${level()}${helpHint()}`)
      continue
    }
    const sub = positionals.length === 0 ? Table.child(node, a) : undefined
    if (sub !== undefined) {
      node = sub
      path.push(sub.name)
      continue
    }
    const expected = node.args ?? []
    if (positionals.length < expected.length) {
      positionals.push(a)
      continue
    }
    if (node.rest !== undefined) return undefined
    // A word that is not a command here: a typo of one (even if an earlier word was taken as a host).
    const names = (node.subcommands ?? []).flatMap((c) => [c.name, ...(c.aliases ?? [])])
    // A command of a group typed without the group: "workspace list" for "connect workspace list", "serve" for
    // "relay serve".
    const grouped = node === Table.root && positionals.length === 0 ? inGroup(a) : undefined
    const typo =
      grouped === undefined
        ? [positionals[0], a].find((w) => w !== undefined && nearest(w, names) !== undefined)
        : undefined
    if (grouped !== undefined || typo !== undefined || (names.length > 0 && expected.length === 0))
      return usage(
        `unknown command "${typo ?? a}" for ${level()}${
          grouped !== undefined
            ? ` (did you mean "cmdop ${grouped}"?)`
            : typo !== undefined
              ? ` (did you mean "${where()} ${nearest(typo, names)}"?)`
              : ""
        } — use one of ${names.join(", ")}${helpHint()}`
      )
    // ssh's `ssh host cmd`: here a command runs with exec.
    const execHint =
      node.name === "connect" && positionals.length === 1
        ? `; to run a command: cmdop connect exec ${positionals[0]} -- ${a} …`
        : ""
    return usage(`unexpected argument "${a}" for ${level()}${execHint}${helpHint()}`)
  }
  const missing = (node.args ?? []).slice(positionals.length).find((x) => x.optional !== true)
  // A group that runs by itself (`connect`, `connect workspace`) has only optional arguments; a leaf missing one
  // is told which, in the words of its usage line.
  if (missing !== undefined)
    return usage(`missing <${missing.name}> for ${level()}: ${usageLine(path, node)}${helpHint()}`)
  return undefined
}

/** The groups whose commands a user may type without them, in the order tried. */
const GROUPS = ["connect", "relay", "agent"] as const

/** `<group> <command>` when `word` is a command (or alias) of one of the top-level groups, else undefined. */
const inGroup = (word: string): string | undefined => {
  for (const group of GROUPS) {
    const node = Table.child(Table.root, group)
    const found = node === undefined ? undefined : Table.child(node, word)
    if (found !== undefined) return `${group} ${word}`
  }
  return undefined
}

/** `cmdop connect workspace use <name>`: the command's words and arguments. */
const usageLine = (path: ReadonlyArray<string>, node: Table.Node): string =>
  [
    ...path,
    ...(node.args ?? []).map((x) => (x.optional ? `[${x.name}]` : `<${x.name}>`)),
    ...(node.rest === undefined ? [] : [`-- <${node.rest}> [args…]`])
  ].join(" ")

/**
 * The flags `word` is the start or the last words of (`--peer-addr` of `--peer-address`, `--port` of `--grpc-port`
 * and `--http-port`), said as a choice; undefined when none or too many are, or the word is too short to tell.
 * Tried before the nearest spelling, which takes `--port` for `--host`.
 */
const partOf = (word: string, names: ReadonlyArray<string>): string | undefined => {
  if (!word.startsWith("--") || word.length < 6) return undefined
  const tail = `-${word.slice(2)}`
  const found = names.filter((n) => n !== word && n.startsWith("--") && (n.startsWith(word) || n.endsWith(tail)))
  if (found.length === 0 || found.length > 3) return undefined
  return found.length === 1 ? found[0] : `${found.slice(0, -1).join(", ")} or ${found[found.length - 1]}`
}

/** What is wrong with `value` for flag `f` (not one of its choices, not a whole number), or undefined. */
const badValue = (f: Table.Flag, value: string): string | undefined => {
  if (f.choices !== undefined && !f.choices.includes(value)) {
    const guess = nearest(value, f.choices)
    return `${f.name} "${value}" is not one of ${f.choices.join(", ")}${guess ? ` (did you mean ${guess}?)` : ""}`
  }
  if (f.integer === true && !/^\d+$/.test(value)) return `${f.name} "${value}" is not a whole number`
  if (f.port === true && Number(value) > 65535)
    return `${f.name} ${value} is not a port (1 to 65535, or 0 for a free one)`
  return undefined
}

/** A hint for a host that was not found but is one edit or two from a subcommand (`connect exce`). */
export const commandHint = (args: ReadonlyArray<string>, host: string): string => {
  const { node, path } = locate(args)
  const guess = nearest(
    host,
    (node.subcommands ?? []).map((c) => c.name)
  )
  return guess === undefined
    ? ""
    : ` — or did you mean "cmdop ${[...path, guess].join(" ")}"? see "cmdop ${path.join(" ")} --help"`
}
