/**
 * The pieces of the CLI's command table (`CommandTable.ts`): what a command and a flag are, the flag sets many
 * commands share, and the helper for `connect`'s leaves.
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
  /** Its value is a TCP port to listen on: 0 to 65535 (0: the system picks a free one). */
  readonly port?: boolean
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
    help: "relay host:port, https://host[:port] for TLS, or a cluster's nodes a,b (also: CMDOP_SERVER)"
  },
  { name: "--workspace", value: "NAME", help: "a stored workspace for this call only (also: CMDOP_WORKSPACE)" },
  { name: "--json", help: "one JSON document on stdout (implies -q)" },
  { name: "--no-interactive", alias: "-q", help: "never prompt; fail fast" }
]

export const STORE_FLAGS: ReadonlyArray<Flag> = [
  { name: "--data-dir", value: "DIR", help: "the embedded SQLite store (default ~/.cmdop/relay)" },
  { name: "--db", value: "URL", help: "PostgreSQL URL instead of the embedded store (env CMDOP_RELAY_DB)" },
  { name: "--json", help: "one JSON document on stdout" }
]

export const HOST_HELP =
  "<host>: exact hostname or name, a prefix of one (2+ characters), the id or a prefix of it (4+); never a part"

export const connectLeaf = (name: string, help: string, extra: Partial<Omit<Node, "name" | "help">> = {}): Node => ({
  name,
  help,
  ...extra,
  flags: [...(extra.flags ?? []), ...GLOBAL_FLAGS]
})

/** `workspace add` and `set` read the global --api-key and --server as what to store, not as this call's. */
const STORED_NOT_PER_CALL = [
  "Here --api-key and --server are what the workspace stores, not flags for this call only:",
  "its key is then sent to that server alone, never to another relay a later call names."
]

export const workspaceSubcommands: ReadonlyArray<Node> = [
  connectLeaf("list", "all stored workspaces; * marks the active one"),
  connectLeaf("use", "make a stored workspace the active one (an unknown name changes nothing)", {
    args: [{ name: "name" }]
  }),
  connectLeaf("add", "store a new workspace (with --force: change an existing one)", {
    args: [{ name: "name" }],
    flags: [{ name: "--force", help: "change the workspace if it exists (its key and server)" }],
    notes: STORED_NOT_PER_CALL
  }),
  connectLeaf("set", "change a stored workspace: --api-key K and/or --server S", {
    args: [{ name: "name" }],
    notes: STORED_NOT_PER_CALL
  }),
  connectLeaf("remove", "forget a stored workspace (local only; never touches the relay)", {
    args: [{ name: "name" }]
  }),
  connectLeaf("sync", "pull your workspaces from the relay (needs cmdop login); keeps keys, deletes nothing")
]
