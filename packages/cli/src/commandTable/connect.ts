/** `cmdop connect …`: machines, exec, shells, share links, sessions, approvals, local workspaces and keys. */
import { connectLeaf, GLOBAL_FLAGS, HOST_HELP, type Node, workspaceSubcommands } from "./parts.js"

export const connectNode: Node = {
  name: "connect",
  help: "reach machines (exec, shells, share links) and manage local workspaces and keys",
  args: [{ name: "host", optional: true, host: true }],
  flags: [
    { name: "--list", help: "the machines of the workspace" },
    { name: "--online", help: "with --list: only machines that are online" },
    { name: "--session", value: "ID", help: "attach to this existing interactive session" },
    { name: "--list-sessions", help: "the interactive sessions running on <host>" },
    { name: "--kill-session", value: "ID", help: "end this interactive session on <host> (shell and processes)" },
    { name: "--detach-keys", value: "KEYS", help: "a docker-style detach chord (ctrl-p,ctrl-q; ctrl-d)" },
    ...GLOBAL_FLAGS
  ],
  subcommands: [
    connectLeaf("exec", "run one command on a machine and pass its output and exit code through", {
      args: [{ name: "host", host: true }],
      rest: "command",
      flags: [
        {
          name: "--timeout",
          value: "DURATION",
          help: "kill the command after this long (90s, 5m, 1h; default 30s, 0 for none); exit 124"
        },
        { name: "--shell", help: "join the words and run them through the remote user's shell" }
      ],
      usage: ["connect exec [flags] <host> [--] <command> [args…]"],
      notes: [
        HOST_HELP,
        "Every word after <host> (or after --) is the remote command's, untouched, as with ssh: the CLI's flags",
        "go before <host>. Several words run as an argv without a shell; one word with spaces or shell syntax",
        "('echo $HOME') runs through the remote user's shell. stdin is forwarded when it is not a terminal.",
        "Exit: the remote command's code (a signal n is 128+n), 124 on timeout, 255 when cmdop itself fails."
      ]
    }),
    connectLeaf("sessions", "the interactive sessions running on a machine; --kill-session <id> ends one", {
      args: [{ name: "host", host: true }],
      flags: [
        {
          name: "--kill-session",
          value: "ID",
          help: "end this session on the machine: its shell and every process it started"
        }
      ],
      notes: [
        "Reattach to a session with: cmdop connect <host> --session <id>. A share-link guest sees and ends only",
        "the sessions its own link opened."
      ]
    }),
    {
      ...connectLeaf("share", "mint a share link: one machine, time-limited, for a guest", {
        args: [{ name: "host", optional: true, host: true }],
        flags: [
          { name: "--ttl", value: "DURATION", help: "lifetime, rounded up to whole hours; 0 = never" },
          {
            name: "--session",
            value: "ID",
            help: "share one live interactive session instead (pair debugging)"
          }
        ]
      }),
      subcommands: [
        connectLeaf("list", "the links with their status and audit trail, a page at a time", {
          args: [{ name: "host", optional: true, host: true }],
          flags: [
            { name: "--limit", value: "N", integer: true, help: "links per page, 1 to 500 (default 50)" },
            {
              name: "--after",
              value: "CURSOR",
              help: 'the next page: the cursor the last one printed after "more:"'
            },
            { name: "--all", help: "every page" }
          ]
        }),
        connectLeaf("revoke", "revoke a link now; the guest's live sessions end at once", {
          args: [{ name: "id" }]
        })
      ]
    },
    {
      ...connectLeaf("workspace", "the local workspaces (alias: ws)"),
      aliases: ["ws"],
      subcommands: workspaceSubcommands
    },
    {
      ...connectLeaf("key", "the API key of the active workspace (or of --workspace NAME)"),
      subcommands: [
        connectLeaf("get", "the key, masked"),
        connectLeaf("set", "store a key (with --workspace NAME: that workspace, created if missing)", {
          args: [{ name: "key" }]
        }),
        connectLeaf("clear", "remove the key; later calls fall through to CMDOP_API_KEY")
      ]
    },
    connectLeaf("set-key", 'deprecated alias of "key set"', { args: [{ name: "key" }] }),
    connectLeaf("whoami", "which credential a call would use, and who the relay says you are"),
    connectLeaf("approvals", "sessions the machines' gates hold for an operator's approval", {
      flags: [
        {
          name: "--watch",
          help: "keep watching: print each new request as it comes (and when it is settled) until Ctrl-C; with --json, one JSON object per line"
        }
      ]
    }),
    connectLeaf("approve", "let a held session run (--for-link: and the link's later asks)", {
      args: [{ name: "id" }],
      flags: [{ name: "--for-link", help: "also let this guest link's later asks through while the agent runs" }]
    }),
    connectLeaf("deny", "refuse a held session", { args: [{ name: "id" }] })
  ]
}
