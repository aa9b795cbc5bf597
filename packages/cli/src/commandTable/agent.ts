/** `cmdop agent …`: this machine's agent (registration, the daemon, its gate and approvals, systemd). */
import { connectLeaf, type Node } from "./parts.js"

export const agentNode: Node = {
  name: "agent",
  help: "this machine's agent: register, start, stop, status, install at boot, its gate (permissions, approvals)",
  subcommands: [
    connectLeaf("register", "create ~/.cmdop/agent.json and register with the relay", {
      flags: [
        { name: "--name", value: "NAME", help: "display name (default: the hostname)" },
        { name: "--hostname", value: "HOST", help: "hostname to register (default: this machine's)" }
      ]
    }),
    connectLeaf("start", "start the agent (in the background unless --foreground)", {
      flags: [
        { name: "--foreground", help: "run in this terminal; Ctrl-C stops it" },
        { name: "--session-idle", value: "DURATION", help: "close interactive sessions idle this long (12h)" },
        { name: "--permissions", value: "FILE", help: "the gate's policy file (default ~/.cmdop/permissions.yaml)" }
      ]
    }),
    connectLeaf("stop", "stop the agent; the relay shows the machine offline at once"),
    connectLeaf("status", "ONLINE, CONNECTING or STOPPED"),
    connectLeaf("install", "a systemd unit that starts the agent at boot (user unit by default)", {
      flags: [
        { name: "--user", help: "a user unit under ~/.config/systemd/user (the default)" },
        { name: "--system", help: "a system unit under /etc/systemd/system (needs root)" },
        { name: "--dry-run", help: "print the unit and where it would go; change nothing" },
        { name: "--permissions", value: "FILE", help: "the gate's policy file the agent runs with" },
        { name: "--session-idle", value: "DURATION", help: "close interactive sessions idle this long" }
      ],
      notes: [
        "ExecStart runs this node and this cmdop with agent start --foreground and the --server, --workspace,",
        "--permissions given here; Restart=on-failure. Where systemd runs, systemctl enables and starts it;",
        "elsewhere the exact commands are printed. The unit never holds an API key (the agent reads the stored one)."
      ]
    }),
    connectLeaf("uninstall", "disable and remove the agent's systemd unit", {
      flags: [
        { name: "--user", help: "the user unit (the default)" },
        { name: "--system", help: "the system unit" },
        { name: "--dry-run", help: "say what would be removed; change nothing" }
      ]
    }),
    {
      name: "permissions",
      help: "the machine's gate: check a permissions.yaml, explain a decision",
      subcommands: [
        connectLeaf("check", "validate a permissions.yaml (default ~/.cmdop/permissions.yaml)", {
          args: [{ name: "path", optional: true }],
          flags: [{ name: "--permissions", value: "FILE", help: "the policy file" }]
        }),
        connectLeaf("explain", "show which rule decides a request, and why (floor listed)", {
          rest: "command",
          flags: [
            { name: "--permissions", value: "FILE", help: "the policy file" },
            { name: "--caller", value: "KIND", choices: ["key", "user", "guest"], help: "key, user or guest" },
            { name: "--user", value: "EMAIL", help: "the user's email (caller user)" },
            { name: "--share", value: "ID", help: "the share link id (caller guest)" },
            { name: "--mode", value: "MODE", choices: ["exec", "shell", "attach"], help: "exec, shell or attach" },
            { name: "--shell", help: "the command is a shell line (exec --shell)" }
          ],
          usage: ["agent permissions explain --caller key|user|guest [flags] -- <command> [args…]"]
        })
      ]
    },
    connectLeaf("approvals", "the gate's requests waiting for an operator on this machine"),
    connectLeaf("approve", "let a held request run (--for-link: and the link's later asks)", {
      args: [{ name: "id" }],
      flags: [{ name: "--for-link", help: "also approve this guest link's later asks while the agent runs" }]
    }),
    connectLeaf("deny", "refuse a held request", { args: [{ name: "id" }] })
  ]
}
