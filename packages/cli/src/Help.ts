/**
 * Every `--help` page, as plain text: curated overviews of the command groups (`cmdop`, `cmdop connect`,
 * `… workspace`, `… key`, `… share`, `agent`, `relay`), and for every other command a page built from the command
 * table (what it does, usage, its own flags, notes, the global flags). @effect/cli's generated help is never shown:
 * it colours piped output, prints a `$ exec` usage line, placeholder descriptions and its `--wizard` option.
 */

import * as Table from "./CommandTable.js"
import * as Usage from "./Usage.js"

const GLOBALS = `Flags for every connect subcommand (before or after its name):
  -k, --api-key KEY     credential for this call only (also: CMDOP_API_KEY)
  -s, --server ADDR     relay host:port, or https://host[:port] for TLS (also: CMDOP_SERVER)
      --workspace NAME  a stored workspace for this call only (also: CMDOP_WORKSPACE)
      --json            one JSON document on stdout (implies -q)
  -q, --no-interactive  never prompt; fail fast`

const pages: Record<string, string> = {
  "": `cmdop — remote machine access through a relay

Usage: cmdop <command> [flags]

Commands:
  connect     reach machines (exec, shells, share links) and manage local workspaces and keys
  agent       this machine's agent: register, start, stop, status, its gate (permissions, approvals)
  relay       run a relay and administer its workspaces, keys and users (on the relay host)
  login       sign in to a relay as a person (device flow in the browser); logout signs out
  up          a relay, a "local" workspace and this machine's agent, all here, in one command
  completion  a shell completion script: cmdop completion bash|zsh|fish (commands, flags, machine names)

Start here:
  cmdop up                                   then, in another terminal:
  cmdop connect --list
  cmdop connect exec <host> -- uptime
  cmdop connect <host>                       an interactive shell (~. detaches)

"cmdop <command> --help" shows each command; "cmdop --version" (or -v, version) prints the version.`,

  connect: `cmdop connect — reach machines through the relay

Usage:
  cmdop connect <host> [--session ID] [--detach-keys ctrl-p,ctrl-q]
                                             interactive shell; ~. at the start of a line detaches (the session
                                             keeps running), ~? lists escapes, ~~ types a tilde; Ctrl-D is the
                                             remote shell's. With stdin not a terminal: the login shell, no PTY
  cmdop connect                              in a terminal: pick a machine (fuzzy, online first)
  cmdop connect sessions <host> [--kill-session <id>]  interactive sessions on <host>; end one
  cmdop connect --list [--online] [--json]   the machines of the workspace
  cmdop connect exec <host> [--timeout 30s] [--shell] [--json] -- <command> [args…]
  cmdop connect share <host> [--ttl 24h] [--json]     a link for a guest: one machine, time-limited
  cmdop connect share list [host] | share revoke <id>
  cmdop connect workspace [list|use|add|remove]       local workspaces (alias: ws)
  cmdop connect key get | key set <key> | key clear   the workspace's API key
  cmdop connect whoami [--json]                       which credential a call would use

<host> is an exact hostname or display name, a machine id, a prefix of a hostname or name (2+ characters) or of
an id (4+), or (except for exec) a unique part of a hostname or name. exec never picks by a part: a terminal asks.
exec: the CLI's flags go before <host>; every word after it (or after --) is the remote command's, untouched,
as with ssh. Several words run as an argv without a shell; one word with spaces or shell syntax
('echo $HOME') runs through the remote user's shell; --shell joins the words and always uses it.
Exit codes: the remote command's own (a signal n is 128+n), 124 on timeout, 2 for usage errors, 255 when
cmdop itself fails (unknown machine, offline, relay unreachable, bad key).

${GLOBALS}`,

  "connect workspace": `cmdop connect workspace — the local workspace store (~/.cmdop/ssh_workspaces.json; alias: ws)

Usage:
  cmdop connect workspace                         print the active workspace
  cmdop connect workspace list                    all stored workspaces; * marks the active one
  cmdop connect workspace use <name>              make <name> active (an unknown name changes nothing)
  cmdop connect workspace add <name> [--api-key K] [--server S] [--force]   --force changes an existing one
  cmdop connect workspace set <name> [--api-key K] [--server S]             change a stored workspace
  cmdop connect workspace remove <name>           local only; never touches the relay

${GLOBALS}`,

  "connect key": `cmdop connect key — the API key of the active workspace (or of --workspace NAME)

Usage:
  cmdop connect key get                 the key, masked
  cmdop connect key set <key>           store it (with --workspace NAME: that workspace, created if missing;
                                        with --server S: its relay too); checks the key's format and asks
                                        the relay whether it accepts it (offline: says so, stores it anyway)
  cmdop connect key clear               remove it; later calls fall through to CMDOP_API_KEY

${GLOBALS}`,

  "connect share": `cmdop connect share — share links: one token, one machine, for a guest without an account

Usage:
  cmdop connect share <host> [--ttl 24h] [--json]   mint a link; --ttl rounds up to whole hours (90m → 2h),
                                                    0 = never expires, at most 720h
  cmdop connect share <host> --session <id>         a link for one live session only (pair debugging)
  cmdop connect share list [host] [--json]          every link with its status and audit trail
  cmdop connect share revoke <id>                   revoke now; the guest's sessions end on the machine

The guest opens the URL in a browser (a terminal on that machine), or uses the token from a CLI:
  cmdop connect --api-key <token> --server <relay> exec <host> -- uptime
Treat the URL like a password.

${GLOBALS}`,

  agent: `cmdop agent — this machine's agent (one outbound stream to the relay; no inbound port)

Usage:
  cmdop agent register [--name N] [--hostname H]   create ~/.cmdop/agent.json and register with the relay
  cmdop agent start [--foreground] [--session-idle 12h]
  cmdop agent status [--json]                      ONLINE, CONNECTING or STOPPED
  cmdop agent stop                                 the relay shows the machine offline at once

The agent uses the credential chain of "cmdop connect" (-k/-s/--workspace, CMDOP_API_KEY, the active workspace)
and follows the active workspace when it changes.`,

  relay: `cmdop relay — run a relay and administer it (on the relay host)

Usage:
  cmdop relay serve [--data-dir D | --db postgres://…] [--host 127.0.0.1] [--grpc-port 50051]
                    [--http-port 8080] [--public-url U] [--tls-cert F --tls-key F]
  cmdop relay workspace create <name> [--json]     prints the workspace's first API key, once
  cmdop relay key rotate <name> [--json]           new key; the old one and its share links stop working
  cmdop relay signing-key rotate | retire <kid>    the keys that sign share links

Admin commands act on the store directly: --data-dir (default ~/.cmdop/relay) or --db (env CMDOP_RELAY_DB).`
}
pages["connect ws"] = pages["connect workspace"]!

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
    const left = `${f.alias ? `${f.alias}, ` : "    "}${f.name}${f.value ? ` ${f.value}` : ""}`
    return `  ${left.padEnd(24)}${f.help}`
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
  const wantsHelp = argv.length === 0 || argv.includes("--help") || argv.includes("-h") || argv[0] === "help"
  if (!wantsHelp) return undefined
  const { node, path } = Usage.locate(argv.filter((a) => a !== "help"))
  const words = argv.filter((a) => !a.startsWith("-") && a !== "help")
  return pages[words.join(" ")] ?? pages[path.join(" ")] ?? page(path, node)
}
