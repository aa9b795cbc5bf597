/**
 * Programs that run another program given on their command line (`sudo`, `env`, `nice`, `timeout`, `xargs`,
 * `find -exec`, …). Rules match a command as written, but the floor and the shell reader look through these:
 * `sudo rm -rf /` hits the floor and `env FOO=1 bash -c '…'` has its script read.
 */
import type { ArgWord } from "./CommandPattern.js"

/** What a wrapper runs: the inner commands (argv lists), or a reason the gate cannot tell. */
export type Unwrapped =
  | { readonly _tag: "Inner"; readonly commands: ReadonlyArray<ReadonlyArray<ArgWord>> }
  | { readonly _tag: "Hidden"; readonly reason: string }

/** Programs that are shells: given `-c` they run a script from their arguments, otherwise from stdin or a file. */
export const SHELLS: ReadonlySet<string> = new Set(["sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "posh", "yash"])

/** Builtins and programs whose job is to run code the gate cannot read (a string, a file, a callback). */
export const HIDING: Readonly<Record<string, string>> = {
  eval: "eval runs a string as shell code",
  source: "source runs a file as shell code",
  ".": ". runs a file as shell code",
  alias: "alias defines text that replaces a command",
  trap: "trap runs a string as shell code",
  bind: "bind can run shell code",
  complete: "complete can run shell code",
  compgen: "compgen can run shell code",
  fc: "fc re-runs history as shell code",
  enable: "enable loads builtins from files",
  hash: "hash can point a command name at another file",
  mapfile: "mapfile can run a callback",
  readarray: "readarray can run a callback",
  su: "su runs a shell",
  flock: "flock can run a shell string",
  watch: "watch runs its command through a shell",
  script: "script runs a shell"
}

export const basename = (path: string): string => path.slice(path.lastIndexOf("/") + 1)

interface OptionGrammar {
  /** Options that take the next word as their value (when not attached as `-uroot` or `--user=root`). */
  readonly withValue: ReadonlySet<string>
  /** Options after which there is no command (e.g. `command -v`). */
  readonly noCommand?: ReadonlySet<string>
  /** Options that make the wrapper run something the gate cannot read. */
  readonly hiding?: Readonly<Record<string, string>>
  /** Positional words between the options and the command (`timeout DURATION cmd`). */
  readonly operands?: number
  /** `NAME=VALUE` words before the command are settings, not the command (`env`). */
  readonly assignments?: boolean
}

const set = (...items: ReadonlyArray<string>): ReadonlySet<string> => new Set(items)

const GRAMMARS: Readonly<Record<string, OptionGrammar>> = {
  env: {
    withValue: set("-u", "--unset", "-C", "--chdir"),
    hiding: { "-S": "env -S splits a string into a command", "--split-string": "env -S splits a string" },
    assignments: true
  },
  sudo: {
    withValue: set(
      "-u",
      "--user",
      "-g",
      "--group",
      "-p",
      "--prompt",
      "-C",
      "--close-from",
      "-D",
      "--chdir",
      "-h",
      "--host",
      "-r",
      "--role",
      "-t",
      "--type",
      "-U",
      "--other-user",
      "-T",
      "--command-timeout"
    ),
    noCommand: set(
      "-l",
      "--list",
      "-v",
      "--validate",
      "-k",
      "--reset-timestamp",
      "-K",
      "--remove-timestamp",
      "-V",
      "--version"
    ),
    hiding: {
      "-s": "sudo -s runs a shell",
      "--shell": "sudo -s runs a shell",
      "-i": "sudo -i runs a login shell",
      "--login": "sudo -i runs a login shell",
      "-e": "sudo -e runs an editor",
      "--edit": "sudo -e runs an editor"
    }
  },
  doas: { withValue: set("-u", "-C"), hiding: { "-s": "doas -s runs a shell" } },
  nice: { withValue: set("-n", "--adjustment") },
  nohup: { withValue: set() },
  timeout: { withValue: set("-s", "--signal", "-k", "--kill-after"), operands: 1 },
  time: { withValue: set("-f", "--format", "-o", "--output") },
  command: { withValue: set(), noCommand: set("-v", "-V") },
  builtin: { withValue: set() },
  exec: { withValue: set("-a") },
  stdbuf: { withValue: set("-i", "--input", "-o", "--output", "-e", "--error") },
  setsid: { withValue: set() },
  ionice: {
    withValue: set("-c", "--class", "-n", "--classdata"),
    noCommand: set("-p", "--pid", "-P", "--pgid", "-u", "--uid")
  },
  taskset: { withValue: set(), noCommand: set("-p", "--pid"), operands: 1 },
  chrt: { withValue: set(), noCommand: set("-p", "--pid", "-m", "--max"), operands: 1 },
  xargs: {
    withValue: set(
      "-a",
      "--arg-file",
      "-d",
      "--delimiter",
      "-E",
      "-e",
      "--eof",
      "-I",
      "-i",
      "--replace",
      "-L",
      "-l",
      "--max-lines",
      "-n",
      "--max-args",
      "-P",
      "--max-procs",
      "-s",
      "--max-chars",
      "--process-slot-var"
    )
  },
  busybox: { withValue: set() }
}

/** Skips a wrapper's options; returns the index where the command starts, or why there is none to read. */
const commandStart = (
  argv: ReadonlyArray<ArgWord>,
  grammar: OptionGrammar
): number | { readonly reason: string } | "none" => {
  let i = 1
  while (i < argv.length) {
    const word = argv[i]!
    if (!word.known) return { reason: "a wrapper option the gate cannot read" }
    const text = word.text
    if (text === "--") {
      i++
      break
    }
    if (grammar.assignments === true && /^[A-Za-z_][A-Za-z0-9_]*=/.test(text)) {
      i++
      continue
    }
    if (!text.startsWith("-") || text === "-") break
    if (/^-\d+$/.test(text)) {
      i++
      continue
    }
    const name = text.startsWith("--") ? text.split("=")[0]! : text.slice(0, 2)
    const hidden = grammar.hiding?.[name]
    if (hidden !== undefined) return { reason: hidden }
    if (grammar.noCommand?.has(name) === true) return "none"
    const attached = text.startsWith("--") ? text.includes("=") : text.length > 2
    i += grammar.withValue.has(name) && !attached ? 2 : 1
  }
  i += grammar.operands ?? 0
  return i < argv.length ? i : "none"
}

/** The commands `find` runs for `-exec`, `-execdir`, `-ok`, `-okdir` (up to `;` or `+`). */
const findCommands = (argv: ReadonlyArray<ArgWord>): ReadonlyArray<ReadonlyArray<ArgWord>> => {
  const out: Array<ReadonlyArray<ArgWord>> = []
  for (let i = 1; i < argv.length; i++) {
    const t = argv[i]!.text
    if (t === "-exec" || t === "-execdir" || t === "-ok" || t === "-okdir") {
      let j = i + 1
      while (j < argv.length && argv[j]!.text !== ";" && argv[j]!.text !== "+") j++
      if (j > i + 1) out.push(argv.slice(i + 1, j))
      i = j
    }
  }
  return out
}

/** One step of unwrapping: what `argv` runs inside it, if it is a wrapper; `undefined` if it is not. */
export const unwrap = (argv: ReadonlyArray<ArgWord>): Unwrapped | undefined => {
  const head = argv[0]
  if (head === undefined || !head.known) return undefined
  const name = basename(head.text)
  if (name === "find") {
    const commands = findCommands(argv)
    return commands.length > 0 ? { _tag: "Inner", commands } : undefined
  }
  const grammar = GRAMMARS[name]
  if (grammar === undefined) return undefined
  const start = commandStart(argv, grammar)
  if (start === "none") return undefined
  if (typeof start !== "number") return { _tag: "Hidden", reason: `${name}: ${start.reason}` }
  return { _tag: "Inner", commands: [argv.slice(start)] }
}

/** Every command `argv` runs, itself first, looking through nested wrappers (depth-limited). */
export const allCommands = (argv: ReadonlyArray<ArgWord>, depth = 0): ReadonlyArray<ReadonlyArray<ArgWord>> => {
  const inner = depth < 8 ? unwrap(argv) : undefined
  if (inner === undefined || inner._tag === "Hidden") return [argv]
  return [argv, ...inner.commands.flatMap((c) => allCommands(c, depth + 1))]
}
