/**
 * The CLI's surface as data: every command at every level, its flags (and which take a value), its positional
 * arguments and one line saying what it does. Checking argv before @effect/cli parses it (`Usage.ts`), the help
 * pages of leaf commands (`Help.ts`) and shell completions (`Completion.ts`) all read this one table; a test keeps
 * it in step with the command tree.
 */

export interface Flag {
  readonly name: string
  readonly alias?: string
  /** The value's placeholder, for flags that take one (`--timeout 30s`). */
  readonly value?: string
  /** The values it accepts, checked before @effect/cli parses (whose own message names no flag). */
  readonly choices?: ReadonlyArray<string>
  /** Its value is a whole number (a port, a count). */
  readonly integer?: boolean
  readonly help: string
}

export interface Node {
  readonly name: string
  readonly aliases?: ReadonlyArray<string>
  readonly help: string
  /** Positional arguments; `host` ones complete to machine names. */
  readonly args?: ReadonlyArray<{ readonly name: string; readonly optional?: boolean; readonly host?: boolean }>
  /** Extra words after the arguments (exec's remote command) are allowed. */
  readonly rest?: string
  readonly flags?: ReadonlyArray<Flag>
  readonly subcommands?: ReadonlyArray<Node>
  /** For help: usage lines after "cmdop …"; default: built from the flags and arguments. */
  readonly usage?: ReadonlyArray<string>
  /** For help: lines after the flags. */
  readonly notes?: ReadonlyArray<string>
}

/** The flags every `connect` subcommand (and the agent's) takes. */
export const GLOBAL_FLAGS: ReadonlyArray<Flag> = [
  { name: "--api-key", alias: "-k", value: "KEY", help: "credential for this call only (also: CMDOP_API_KEY)" },
  {
    name: "--server",
    alias: "-s",
    value: "ADDR",
    help: "relay host:port, or https://host[:port] for TLS (also: CMDOP_SERVER)"
  },
  { name: "--workspace", value: "NAME", help: "a stored workspace for this call only (also: CMDOP_WORKSPACE)" },
  { name: "--json", help: "one JSON document on stdout (implies -q)" },
  { name: "--no-interactive", alias: "-q", help: "never prompt; fail fast" }
]

const STORE_FLAGS: ReadonlyArray<Flag> = [
  { name: "--data-dir", value: "DIR", help: "the embedded SQLite store (default ~/.cmdop/relay)" },
  { name: "--db", value: "URL", help: "PostgreSQL URL instead of the embedded store (env CMDOP_RELAY_DB)" },
  { name: "--json", help: "one JSON document on stdout" }
]

const HOST_HELP =
  "<host>: exact hostname or name, a prefix of one (2+ characters), the id or a prefix of it (4+); never a part"

const connectLeaf = (name: string, help: string, extra: Partial<Omit<Node, "name" | "help">> = {}): Node => ({
  name,
  help,
  ...extra,
  flags: [...(extra.flags ?? []), ...GLOBAL_FLAGS]
})

const workspaceSubcommands: ReadonlyArray<Node> = [
  connectLeaf("list", "all stored workspaces; * marks the active one"),
  connectLeaf("use", "make a stored workspace the active one (an unknown name changes nothing)", {
    args: [{ name: "name" }]
  }),
  connectLeaf("add", "store a new workspace (with --force: change an existing one)", {
    args: [{ name: "name" }],
    flags: [{ name: "--force", help: "change the workspace if it exists (its key and server)" }]
  }),
  connectLeaf("set", "change a stored workspace: --api-key K and/or --server S", { args: [{ name: "name" }] }),
  connectLeaf("remove", "forget a stored workspace (local only; never touches the relay)", {
    args: [{ name: "name" }]
  }),
  connectLeaf("sync", "pull your workspaces from the relay (needs cmdop login); keeps keys, deletes nothing")
]

export const root: Node = {
  name: "cmdop",
  help: "remote machine access through a relay",
  flags: [
    { name: "--version", alias: "-v", help: "print the version" },
    { name: "--help", alias: "-h", help: "show help" }
  ],
  subcommands: [
    {
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
            { name: "--timeout", value: "DURATION", help: "kill the command after this long (90s, 5m, 1h); exit 124" },
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
    },
    {
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
    },
    {
      name: "relay",
      help: "run a relay and administer its workspaces, keys, users and signing keys (on the relay host)",
      subcommands: [
        {
          name: "serve",
          help: "run the relay",
          flags: [
            ...STORE_FLAGS,
            { name: "--host", value: "ADDR", help: "interface to listen on (0.0.0.0 to serve other machines)" },
            { name: "--grpc-port", value: "PORT", integer: true, help: "gRPC port for agents and clients (50051)" },
            {
              name: "--http-port",
              value: "PORT",
              integer: true,
              help: "HTTP port: share pages, health, metrics (8080)"
            },
            { name: "--public-url", value: "URL", help: "base URL share links point at" },
            { name: "--tls-cert", value: "FILE", help: "PEM certificate chain; serve TLS" },
            { name: "--tls-key", value: "FILE", help: "PEM private key for --tls-cert" },
            { name: "--oidc-issuer", value: "URL", help: "single sign-on: the OpenID Connect provider's issuer URL" },
            { name: "--oidc-client-id", value: "ID", help: "single sign-on: this relay's client id at the provider" },
            {
              name: "--oidc-client-secret",
              value: "SECRET",
              help: "single sign-on: the client secret (env CMDOP_OIDC_CLIENT_SECRET)"
            },
            { name: "--node-id", value: "ID", help: "cluster mode (with --db): this node's id (default: host name)" },
            { name: "--peer-address", value: "HOST:PORT", help: "cluster mode: where the other nodes reach this one" },
            {
              name: "--peer-port",
              value: "PORT",
              integer: true,
              help: "cluster mode: the peer service's port (grpc port + 1)"
            },
            {
              name: "--cluster-secret",
              value: "SECRET",
              help: "cluster mode: the secret the nodes share (env CMDOP_CLUSTER_SECRET)"
            }
          ]
        },
        {
          name: "workspace",
          help: "workspaces on the relay",
          subcommands: [
            {
              name: "create",
              help: "create a workspace; prints its first API key, once",
              args: [{ name: "workspace" }],
              flags: STORE_FLAGS
            },
            { name: "list", help: "every workspace: id, created, key generation, machines", flags: STORE_FLAGS }
          ]
        },
        {
          name: "key",
          help: "workspace API keys on the relay",
          subcommands: [
            {
              name: "rotate",
              help: "a new key; the old one and its share links stop working",
              args: [{ name: "workspace" }],
              flags: STORE_FLAGS
            },
            {
              name: "list",
              help: "a workspace's live API keys, masked",
              args: [{ name: "workspace" }],
              flags: STORE_FLAGS
            },
            {
              name: "create",
              help: "one more named API key, printed once; the others stay",
              args: [{ name: "workspace" }, { name: "name" }],
              flags: STORE_FLAGS
            },
            {
              name: "revoke",
              help: "revoke one API key (by name or id): its next call is refused",
              args: [{ name: "workspace" }, { name: "key" }],
              flags: STORE_FLAGS
            }
          ]
        },
        {
          name: "user",
          help: "people on the relay",
          subcommands: [
            {
              name: "add",
              help: "add a person to a workspace (or change their role); prints a one-time sign-in link",
              args: [{ name: "email" }],
              flags: [
                ...STORE_FLAGS,
                { name: "--workspace", value: "NAME", help: "the workspace on this relay (created if new)" },
                {
                  name: "--role",
                  value: "ROLE",
                  choices: ["owner", "member", "viewer"],
                  help: "owner, member or viewer (changes the role of a member)"
                },
                { name: "--public-url", value: "URL", help: "the relay's public URL the link points at" }
              ]
            },
            {
              name: "remove",
              help: "remove a person from a workspace: their next call is refused",
              args: [{ name: "email" }],
              flags: [...STORE_FLAGS, { name: "--workspace", value: "NAME", help: "the workspace on this relay" }]
            },
            {
              name: "disable",
              help: "sign a person out everywhere and refuse their logins",
              args: [{ name: "email" }],
              flags: STORE_FLAGS
            },
            {
              name: "enable",
              help: "let a disabled person sign in again",
              args: [{ name: "email" }],
              flags: STORE_FLAGS
            }
          ]
        },
        {
          name: "signing-key",
          help: "the keys that sign share links",
          subcommands: [
            { name: "rotate", help: "a new signing key", flags: STORE_FLAGS },
            { name: "retire", help: "retire a signing key", args: [{ name: "kid" }], flags: STORE_FLAGS },
            { name: "list", help: "the signing keys: current, still valid, retired", flags: STORE_FLAGS }
          ]
        }
      ]
    },
    {
      name: "login",
      help: "sign this CLI in to a relay (device login in the browser)",
      flags: [
        { name: "--server", alias: "-s", value: "ADDR", help: "the relay's gRPC address host:port" },
        { name: "--web-url", value: "URL", help: "the relay's web address (default http://<host>:8080)" },
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
        { name: "--grpc-port", value: "PORT", integer: true, help: "relay gRPC port (50051)" },
        { name: "--http-port", value: "PORT", integer: true, help: "relay HTTP port (8080)" },
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
