/**
 * The CLI's surface as data: every command at every level, its flags (and which take a value), its positional
 * arguments and one line saying what it does. Checking argv before @effect/cli parses it (`Usage.ts`), the help
 * pages of leaf commands (`Help.ts`) and shell completions (`Completion.ts`) all read this one table; a test keeps
 * it in step with the command tree.
 */
import { agentNode } from "./commandTable/agent.js"
import { connectNode } from "./commandTable/connect.js"
import type { Flag, Node } from "./commandTable/parts.js"
import { relayNode } from "./commandTable/relay.js"

export type { Flag, Node } from "./commandTable/parts.js"
export { GLOBAL_FLAGS } from "./commandTable/parts.js"

export const root: Node = {
  name: "cmdop",
  help: "remote machine access through a relay",
  flags: [
    { name: "--version", alias: "-v", help: "print the version" },
    { name: "--help", alias: "-h", help: "show help" }
  ],
  subcommands: [
    connectNode,
    agentNode,
    relayNode,
    {
      name: "login",
      help: "sign this CLI in to a relay (device login in the browser)",
      flags: [
        {
          name: "--server",
          alias: "-s",
          value: "ADDR",
          help: "the relay's gRPC address host:port (default: the active workspace's)"
        },
        {
          name: "--web-url",
          value: "URL",
          help: "the relay's web address (default: the one cmdop up recorded, else http://<host>:8080)"
        },
        { name: "--no-browser", help: "print the URL only; never open a browser" },
        { name: "--json", help: "print the result as one JSON document" }
      ]
    },
    {
      name: "logout",
      help: "sign this CLI out: revoke the login and delete ~/.cmdop/token.json",
      flags: [{ name: "--json", help: "print the result as one JSON document" }]
    },
    {
      name: "up",
      help: 'a relay, a "local" workspace and this machine\'s agent, all here, in one command',
      flags: [
        { name: "--grpc-port", value: "PORT", integer: true, port: true, help: "relay gRPC port (50051)" },
        { name: "--http-port", value: "PORT", integer: true, port: true, help: "relay HTTP port (8080)" },
        { name: "--data-dir", value: "DIR", help: "relay data dir (default ~/.cmdop/relay)" }
      ]
    },
    {
      name: "completion",
      help: "print a shell completion script: bash, zsh or fish",
      args: [{ name: "shell" }],
      usage: ["completion bash|zsh|fish"],
      notes: [
        "bash:  source <(cmdop completion bash)             (e.g. in ~/.bashrc)",
        "zsh:   source <(cmdop completion zsh)              (after compinit, e.g. in ~/.zshrc)",
        "fish:  cmdop completion fish > ~/.config/fish/completions/cmdop.fish",
        "Machine names complete from a cache (~/.cmdop/machines_cache.json) refreshed from the relay."
      ]
    },
    { name: "version", help: "print the version" }
  ]
}

/** The subcommand of `node` called `word` (by name or alias). */
export const child = (node: Node, word: string): Node | undefined =>
  node.subcommands?.find((c) => c.name === word || (c.aliases ?? []).includes(word))

/** The flag of `node` called `word` (long name or alias, without any `=value`). */
export const flag = (node: Node, word: string): Flag | undefined => {
  const name = word.split("=")[0]!
  return (
    node.flags?.find((f) => f.name === name || f.alias === name) ??
    (name === "--help" || name === "-h" ? HELP : undefined)
  )
}

const HELP: Flag = { name: "--help", alias: "-h", help: "show help" }
