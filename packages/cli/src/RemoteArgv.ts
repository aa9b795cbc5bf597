/**
 * The words of `cmdop connect exec` that belong to the remote command, taken out of argv before @effect/cli sees
 * it, as ssh does: from the command's first word (or after `--`) on, everything goes to the remote command
 * untouched — `-k`, `-h`, `--help`, `--version`, `--wizard` and further `--` included. The CLI's own flags come
 * before the host; exec's own flags written right after the host, before any command word (`exec vm --json -- cmd`,
 * `exec vm --help`), are still the CLI's, since no program name starts with "-"; an unknown flag there is a usage
 * error, not a command.
 *
 * One argument with spaces or shell syntax (`exec vm -- 'echo $HOME'`) runs through the remote user's shell, as
 * ssh does; several arguments run as an argv, without a shell, unless `--shell` is given.
 */
import * as FiberRef from "effect/FiberRef"

/** The remote command of this invocation. `afterDashes`: it followed `--` (so a leading "-" is not a typo). */
export interface Remote {
  readonly argv: ReadonlyArray<string>
  readonly afterDashes: boolean
}

/** The remote command `main` split off; empty when the invocation has none. */
export const current: FiberRef.FiberRef<Remote> = FiberRef.unsafeMake<Remote>({ argv: [], afterDashes: false })

/** Flags of `connect` and `exec` that take a value (as the next word unless written `--flag=value`). */
const VALUED = new Set(["-k", "--api-key", "-s", "--server", "--workspace", "--session", "--timeout"])
/** Flags `exec` takes after the host (the older form `exec vm --json -- cmd`). */
const EXEC_FLAGS = new Set([...VALUED, "--json", "-q", "--no-interactive", "--shell", "--help", "-h"])

/** Index just past the flags starting at `i` (a valued flag takes its value along). Stops at `--` or a word. */
const skipFlags = (args: ReadonlyArray<string>, i: number, known?: ReadonlySet<string>): number => {
  while (i < args.length) {
    const a = args[i]!
    if (a === "--" || !a.startsWith("-") || a === "-") return i
    if (known !== undefined && !known.has(a.split("=")[0]!)) return i
    i += VALUED.has(a) ? 2 : 1
  }
  return i
}

/**
 * Splits argv (without `node` and the script) into the words the CLI parses and the remote command. Only
 * `cmdop connect … exec …` has a remote command; any other argv comes back whole.
 */
export const split = (
  args: ReadonlyArray<string>
): { readonly cli: ReadonlyArray<string>; readonly remote: Remote } => {
  const none = { cli: args, remote: { argv: [], afterDashes: false } }
  if (args[0] !== "connect") return none
  const sub = skipFlags(args, 1)
  if (args[sub] !== "exec") return none
  const flagsEnd = skipFlags(args, sub + 1)
  // `exec -- vm cmd…`: the host is the first word after that --.
  const host = args[flagsEnd] === "--" ? flagsEnd + 1 : flagsEnd
  const beforeHost = args.slice(0, flagsEnd)
  if (host >= args.length) return { cli: beforeHost, remote: none.remote }
  const afterHost = skipFlags(args, host + 1, EXEC_FLAGS)
  const cli = [...beforeHost, ...args.slice(host, afterHost)]
  const rest = args.slice(afterHost)
  if (rest[0] === "--") return { cli, remote: { argv: rest.slice(1), afterDashes: true } }
  return { cli, remote: { argv: rest, afterDashes: false } }
}

/** Shell syntax or whitespace: a single argument holding any of these runs through the remote user's shell. */
const SHELL_SYNTAX = /[\s'"`$\\|&;<>()*?[\]{}~#!=]/

/** True when the remote command is one word that needs a shell to mean what the user typed. */
export const needsShell = (argv: ReadonlyArray<string>): boolean => argv.length === 1 && SHELL_SYNTAX.test(argv[0]!)
