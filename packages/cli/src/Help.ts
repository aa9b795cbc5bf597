/**
 * Every `--help` page, as plain text. A command group's page (`cmdop`, `connect`, `… workspace`, `agent`, `relay`,
 * `agent permissions`, …) is a curated intro and notes around the list of its subcommands, which always comes from
 * the command table, so a new command cannot be missing from its group's page. Every other command's page is
 * built from the table (what it does, usage, its own flags, notes, the global flags). @effect/cli's generated help
 * is never shown: it colours piped output, prints a `$ exec` usage line, placeholder descriptions and `--wizard`.
 */

import * as Table from "./CommandTable.js"
import * as Usage from "./Usage.js"

const GLOBALS = `Flags for choosing the relay and the credential (before or after the command's name):
  -k, --api-key KEY     credential for this call only (also: CMDOP_API_KEY)
  -s, --server ADDR     relay host:port, https://host[:port] for TLS, or a cluster's nodes a,b (also: CMDOP_SERVER)
      --workspace NAME  a stored workspace for this call only (also: CMDOP_WORKSPACE)
      --json            one JSON document on stdout (implies -q)
  -q, --no-interactive  never prompt; fail fast`

/**
 * What a group's page says besides its commands: the title, lines before the command list (how the group itself
 * is used) and notes after it. The command list itself always comes from the command table, so a new subcommand
 * shows up on its group's page without anyone remembering to add it here.
 */
interface Group {
  readonly title: string
  readonly before?: string
  readonly after?: string
  /** Expand subcommand groups into their commands (`key rotate <workspace>`); the top level lists one level. */
  readonly shallow?: boolean
}

const groups: Record<string, Group> = {
  "": {
    title: "cmdop — remote machine access through a relay",
    before: "Usage: cmdop <command> [flags]",
    shallow: true,
    after: `Start here:
  cmdop up                                   then, in another terminal:
  cmdop connect --list
  cmdop connect exec <host> -- uptime
  cmdop connect <host>                       an interactive shell (~. detaches)

"cmdop <command> --help" shows each command; "cmdop --version" (or -v, version) prints the version.`
  },
  connect: {
    title: "cmdop connect — reach machines through the relay",
    before: `Usage:
  cmdop connect <host> [--session ID] [--detach-keys ctrl-p,ctrl-q]
                      interactive shell; ~. at the start of a line detaches (the session keeps running), ~? lists
                      escapes, ~~ types a tilde; Ctrl-D is the remote shell's. With stdin not a terminal: the
                      login shell, no PTY
  cmdop connect       in a terminal: pick a machine (fuzzy, online first)
  cmdop connect --list [--online] [--json]   the machines of the workspace`,
    after: `<host> is an exact hostname or display name, a machine id, a prefix of a hostname or name (2+ characters) or of
an id (4+), or (except for exec) a unique part of a hostname or name. exec never picks by a part: a terminal asks.
exec: the CLI's flags go before <host>; every word after it (or after --) is the remote command's, untouched,
as with ssh. Several words run as an argv without a shell; one word with spaces or shell syntax
('echo $HOME') runs through the remote user's shell; --shell joins the words and always uses it.
Exit codes: the remote command's own (a signal n is 128+n), 124 on timeout, 2 for usage errors, 255 when
cmdop itself fails (unknown machine, offline, relay unreachable, bad key).`
  },
  "connect workspace": {
    title: "cmdop connect workspace — the local workspace store (~/.cmdop/ssh_workspaces.json; alias: ws)",
    before: "Usage:\n  cmdop connect workspace       print the active workspace"
  },
  "connect key": {
    title: "cmdop connect key — the API key of the active workspace (or of --workspace NAME)",
    after: `key set checks the key's format and asks the relay whether it accepts it (offline: says so, stores it
anyway); with --workspace NAME it stores into that workspace (created if missing), with --server S its relay too.`
  },
  "connect share": {
    title: "cmdop connect share — share links: one token, one machine, for a guest without an account",
    before: `Usage:
  cmdop connect share <host> [--ttl 24h] [--json]   mint a link; --ttl rounds up to whole hours (90m → 2h),
                                                    0 = never expires, at most 720h
  cmdop connect share <host> --session <id>         a link for one live session only (pair debugging)`,
    after: `The guest opens the URL in a browser (a terminal on that machine), or uses the token from a CLI:
  cmdop connect --api-key <token> --server <relay> exec <host> -- uptime
Treat the URL like a password.`
  },
  agent: {
    title: "cmdop agent — this machine's agent (one outbound stream to the relay; no inbound port)",
    after: `The agent uses the credential chain of "cmdop connect" (-k/-s/--workspace, CMDOP_API_KEY, the active workspace)
and follows the active workspace when it changes. Its gate: ~/.cmdop/permissions.yaml (docs/permissions.md).`
  },
  relay: {
    title: "cmdop relay — run a relay and administer it (on the relay host)",
    after: `Admin commands act on the store directly: --data-dir (default ~/.cmdop/relay) or --db (env CMDOP_RELAY_DB).`
  }
}

/** `<name>`, `[name]` and the remote command, as a usage line shows a command's arguments. */
const argsOf = (node: Table.Node): string =>
  [
    ...(node.args ?? []).map((a) => (a.optional ? `[${a.name}]` : `<${a.name}>`)),
    ...(node.rest === undefined ? [] : [`-- <${node.rest}> [args…]`])
  ].join(" ")

/** Every command under `node` as [words and arguments, what it does], groups expanded unless `shallow`. */
const commandsOf = (node: Table.Node, shallow: boolean, prefix = ""): ReadonlyArray<readonly [string, string]> =>
  (node.subcommands ?? []).flatMap((c) => {
    const words = `${prefix}${c.name}`
    // The top level names its commands only; their arguments are on their own pages.
    const own = [[shallow ? words : `${words} ${argsOf(c)}`.trimEnd(), c.help] as const]
    return shallow || c.subcommands === undefined ? own : [...own, ...commandsOf(c, false, `${words} `)]
  })

/** Two columns; a left side too wide for the column puts its help on the next line. */
const columns = (rows: ReadonlyArray<readonly [string, string]>, indent = "  "): ReadonlyArray<string> => {
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)))
  return rows.flatMap(([left, help]) =>
    left.length > width
      ? [`${indent}${left}`, `${indent}${" ".repeat(width + 2)}${help}`]
      : [`${indent}${left.padEnd(width)}  ${help}`]
  )
}

const flagColumn = (f: Table.Flag): readonly [string, string] => [
  `${f.alias ? `${f.alias}, ` : "    "}${f.name}${f.value ? ` ${f.value}` : ""}`,
  f.help
]

/**
 * The page of a command group: its curated intro, then every subcommand the table has (the test walks them), then
 * `relay serve`'s flags on the relay page (where people look for them), notes, and the global flags under connect.
 */
export const groupPage = (path: ReadonlyArray<string>, node: Table.Node): string => {
  const key = path.join(" ")
  const name = ["cmdop", ...path].join(" ")
  const group = groups[key] ?? { title: `${name} — ${node.help}` }
  const serve = key === "relay" ? Table.child(node, "serve") : undefined
  return [
    group.title,
    "",
    group.before ?? `Usage: ${name} <command> [flags]`,
    "",
    "Commands:",
    ...columns(commandsOf(node, group.shallow ?? false).map(([l, h]) => [key === "" ? l : `${name} ${l}`, h])),
    ...(serve?.flags?.length ? ["", "cmdop relay serve flags:", ...columns(serve.flags.map(flagColumn))] : []),
    ...(group.after ? ["", group.after] : []),
    ...(key === "" ? [] : ["", `"${name} <command> --help" shows a command's flags.`]),
    ...(path[0] === "connect" ? ["", GLOBALS] : [])
  ].join("\n")
}

/** The help page of a command, from the command table: what it does, usage, its flags, notes. Plain text. */
export const page = (path: ReadonlyArray<string>, node: Table.Node): string => {
  const name = ["cmdop", ...path].join(" ")
  const own = (node.flags ?? []).filter((f) => !Table.GLOBAL_FLAGS.includes(f))
  const hasGlobals = (node.flags ?? []).some((f) => Table.GLOBAL_FLAGS.includes(f))
  const args = (node.args ?? []).map((a) => (a.optional ? `[${a.name}]` : `<${a.name}>`)).join(" ")
  const usage = node.usage?.map((u) => `  cmdop ${u}`) ?? [
    `  ${name}${node.flags?.length ? " [flags]" : ""}${args ? ` ${args}` : ""}`
  ]
  const subs = (node.subcommands ?? []).map((c) => `  ${c.name.padEnd(12)}${c.help}`)
  const flagLine = (f: Table.Flag) => {
    const [left, help] = flagColumn(f)
    // A flag too long for the column gets its help on the next line, not glued to it.
    return left.length < 23 ? `  ${left.padEnd(24)}${help}` : `  ${left}\n  ${" ".repeat(24)}${help}`
  }
  return [
    `${name} — ${node.help}`,
    "",
    "Usage:",
    ...usage,
    ...(subs.length ? ["", "Commands:", ...subs] : []),
    ...(own.length ? ["", "Flags:", ...own.map(flagLine)] : []),
    ...(node.notes?.length ? ["", ...node.notes] : []),
    ...(hasGlobals ? ["", GLOBALS] : [])
  ].join("\n")
}

/**
 * The help page for `argv` when it asks for help (`--help`, `-h`, `help …`, or nothing at all), else undefined:
 * a curated overview for command groups, a page from the command table for the others. `argv` is without `node`
 * and the script, and without any remote command.
 */
export const overviewFor = (all: ReadonlyArray<string>): string | undefined => {
  // Whatever follows "--" belongs to a remote command, never to us.
  const end = all.indexOf("--")
  const argv = end === -1 ? all : all.slice(0, end)
  const wantsHelp =
    argv.length === 0 || argv.includes("--help") || argv.includes("-h") || argv[0] === "help" || bareGroup(argv)
  if (!wantsHelp) return undefined
  const { node, path } = Usage.locate(argv.filter((a) => a !== "help"))
  return node.subcommands !== undefined ? groupPage(path, node) : page(path, node)
}

/**
 * The groups that do something of their own when named alone: the picker (`connect`), the active workspace
 * (`connect workspace`), the "which machine?" hint (`connect share`). Every other group (`agent`, `relay key`,
 * `connect key`, …) has no handler, and @effect/cli would print its own coloured page with `--wizard`.
 */
const RUNS_ALONE = new Set(["connect", "connect workspace", "connect share"])

/** `argv` is only the words of a command group that does nothing alone (`cmdop relay key`): show its page. */
const bareGroup = (argv: ReadonlyArray<string>): boolean => {
  if (argv.some((a) => a.startsWith("-"))) return false
  const { node, path } = Usage.locate(argv)
  return path.length === argv.length && node.subcommands !== undefined && !RUNS_ALONE.has(path.join(" "))
}
