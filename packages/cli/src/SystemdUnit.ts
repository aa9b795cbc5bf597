/**
 * The systemd unit that starts this machine's agent at boot (`cmdop agent install`): where it goes (a user unit
 * under `$XDG_CONFIG_HOME/systemd/user`, or a system unit under `/etc/systemd/system`), its text, and the
 * `systemctl` lines that enable and disable it. Pure, so a test reads exactly what `--dry-run` prints.
 */
import * as nodePath from "node:path"

export type Scope = "user" | "system"

export const UNIT_NAME = "cmdop-agent.service"

/** Where the unit file goes for `scope`. */
export const unitPath = (scope: Scope, env: { readonly home: string; readonly xdgConfigHome?: string }): string =>
  scope === "system"
    ? nodePath.join("/etc/systemd/system", UNIT_NAME)
    : nodePath.join(env.xdgConfigHome || nodePath.join(env.home, ".config"), "systemd", "user", UNIT_NAME)

/**
 * One ExecStart word, quoted as systemd reads it: `%` and `$` are specifiers and variables there, so they are
 * doubled; a word with a space, quote or backslash goes in double quotes.
 */
export const quoteWord = (word: string): string => {
  const escaped = word.replace(/%/g, "%%").replace(/\$/g, "$$$$")
  return /[\s"'\\]/.test(escaped) || escaped === "" ? `"${escaped.replace(/(["\\])/g, "\\$1")}"` : escaped
}

export interface UnitInput {
  readonly scope: Scope
  /** The absolute node binary and cmdop script. */
  readonly node: string
  readonly cmdop: string
  /** The flags `agent start --foreground` runs with (--server, --workspace, --permissions, --session-idle). */
  readonly args: ReadonlyArray<string>
  /** For a system unit: the account the agent runs as, and its home (where ~/.cmdop is). */
  readonly user: string
  readonly home: string
  /** Variables the agent needs in the unit's environment, `NAME=value` (the relay's CA: `CMDOP_TLS_CA`). */
  readonly environment?: ReadonlyArray<string>
}

/** The unit's text. */
export const render = (input: UnitInput): string => {
  const exec = [input.node, input.cmdop, "agent", "start", "--foreground", ...input.args].map(quoteWord).join(" ")
  return [
    "# Written by `cmdop agent install`; remove with `cmdop agent uninstall`.",
    "[Unit]",
    "Description=cmdop agent: this machine, reachable through its relay",
    "Wants=network-online.target",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    ...(input.scope === "system" ? [`User=${input.user}`, `Environment=${quoteWord(`HOME=${input.home}`)}`] : []),
    ...(input.environment ?? []).map((assignment) => `Environment=${quoteWord(assignment)}`),
    `ExecStart=${exec}`,
    "Restart=on-failure",
    "RestartSec=5",
    "",
    "[Install]",
    `WantedBy=${input.scope === "system" ? "multi-user.target" : "default.target"}`,
    ""
  ].join("\n")
}

const systemctl = (scope: Scope) => (scope === "user" ? "systemctl --user" : "systemctl")

/** The commands that make systemd start the unit now and at every boot. */
export const enableCommands = (scope: Scope): ReadonlyArray<string> => [
  `${systemctl(scope)} daemon-reload`,
  `${systemctl(scope)} enable --now ${UNIT_NAME}`
]

/** The commands that stop the unit and take it out of the boot. */
export const disableCommands = (scope: Scope): ReadonlyArray<string> => [
  `${systemctl(scope)} disable --now ${UNIT_NAME}`,
  `${systemctl(scope)} daemon-reload`
]
