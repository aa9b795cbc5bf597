/**
 * The command lines the agent daemon's own bundle (`dist/agent.cjs`, from `agentMain.ts`) runs without the rest of
 * the CLI: `cmdop agent start --foreground` with the flags that command takes, each once, every value-taking flag
 * followed by its value as a separate word. That is what the background start, the systemd unit and people type.
 * Anything else (`--help`, `--flag=value`, a value that looks like a flag, a repeated or unknown flag, a stray word)
 * returns `undefined`, and the launcher runs the whole CLI instead, which parses and reports it as always.
 * Dependency-free: the launcher (`boot.ts`) uses it to pick the bundle before compiling either.
 */

/** The flags of a daemon command line, as given (values unchecked: `agentMain.ts` checks them as the CLI does). */
export interface Parsed {
  readonly apiKey: string | undefined
  readonly server: string | undefined
  readonly workspace: string | undefined
  readonly json: boolean
  readonly sessionIdle: string | undefined
  readonly permissions: string | undefined
}

type Key = "apiKey" | "server" | "workspace" | "sessionIdle" | "permissions" | "json" | "noInteractive" | "foreground"

const VALUE_FLAGS: Readonly<Record<string, Key>> = {
  "--api-key": "apiKey",
  "-k": "apiKey",
  "--server": "server",
  "-s": "server",
  "--workspace": "workspace",
  "--session-idle": "sessionIdle",
  "--permissions": "permissions"
}

const BOOLEAN_FLAGS: Readonly<Record<string, Key>> = {
  "--json": "json",
  "--no-interactive": "noInteractive",
  "-q": "noInteractive",
  "--foreground": "foreground"
}

/** `args` as in `process.argv.slice(2)`. */
export const parse = (args: ReadonlyArray<string>): Parsed | undefined => {
  if (args[0] !== "agent" || args[1] !== "start") return undefined
  const seen = new Map<Key, string | true>()
  for (let i = 2; i < args.length; i++) {
    const word = args[i]!
    const valueKey = Object.hasOwn(VALUE_FLAGS, word) ? VALUE_FLAGS[word] : undefined
    const booleanKey = Object.hasOwn(BOOLEAN_FLAGS, word) ? BOOLEAN_FLAGS[word] : undefined
    const key = valueKey ?? booleanKey
    if (key === undefined || seen.has(key)) return undefined
    if (booleanKey !== undefined) {
      seen.set(key, true)
      continue
    }
    const value = args[i + 1]
    if (value === undefined || value === "" || value.startsWith("-")) return undefined
    seen.set(key, value)
    i += 1
  }
  if (!seen.has("foreground")) return undefined
  const text = (key: Key) => {
    const value = seen.get(key)
    return typeof value === "string" ? value : undefined
  }
  return {
    apiKey: text("apiKey"),
    server: text("server"),
    workspace: text("workspace"),
    json: seen.has("json"),
    sessionIdle: text("sessionIdle"),
    permissions: text("permissions")
  }
}
