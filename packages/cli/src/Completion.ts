/**
 * Shell completion: `cmdop completion bash|zsh|fish` prints a script; each script asks `cmdop __complete <words…>`
 * (the words typed after `cmdop`, the last one being completed) for candidates. Commands and flags come from the
 * command table, at every level; machine names come from the relay through a small cache
 * (`~/.cmdop/machines_cache.json`, refreshed when older than a minute, with a short timeout; a stale cache or none
 * when the relay does not answer), so a TAB never hangs.
 */
import * as AtomicFile from "@cmdop/node/AtomicFile"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as path from "node:path"
import { ExitCode } from "./CliError.js"
import * as Table from "./CommandTable.js"

/** The hidden command the scripts call. */
export const COMPLETE = "__complete"

const CACHE_MAX_AGE_MS = 60_000

const SCRIPTS: Record<string, string> = {
  bash: `# cmdop completion for bash: source <(cmdop completion bash)
_cmdop() {
  local IFS=$'\\n'
  COMPREPLY=($(cmdop ${COMPLETE} "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _cmdop cmdop`,
  zsh: `#compdef cmdop
# cmdop completion for zsh: source <(cmdop completion zsh)   (after compinit)
_cmdop() {
  local -a candidates
  candidates=(\${(f)"$(cmdop ${COMPLETE} "\${(@)words[2,CURRENT]}" 2>/dev/null)"})
  compadd -a candidates
}
compdef _cmdop cmdop`,
  fish: `# cmdop completion for fish: cmdop completion fish > ~/.config/fish/completions/cmdop.fish
complete -c cmdop -f -a '(cmdop ${COMPLETE} (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'`
}

/** Commands and flags for `words` (the last one is being completed); `host` when a machine name fits there. */
export const candidates = (
  words: ReadonlyArray<string>
): { readonly words: ReadonlyArray<string>; readonly host: boolean } => {
  const typed = words.slice(0, -1)
  const current = words[words.length - 1] ?? ""
  let node = Table.root
  let positionals = 0
  for (let i = 0; i < typed.length; i++) {
    const w = typed[i]!
    if (w === "--") return { words: [], host: false }
    if (w.startsWith("-")) {
      const f = Table.flag(node, w)
      if (f?.value !== undefined && !w.includes("=")) i += 1
      continue
    }
    const sub = positionals === 0 ? Table.child(node, w) : undefined
    if (sub !== undefined) node = sub
    else positionals += 1
  }
  const previous = typed[typed.length - 1]
  const pending = previous !== undefined ? Table.flag(node, previous) : undefined
  if (pending?.value !== undefined && !previous!.includes("=")) return { words: [], host: false }
  if (current.startsWith("-"))
    return {
      words: (node.flags ?? []).map((f) => f.name).filter((n) => n.startsWith(current)),
      host: false
    }
  const subs = positionals === 0 ? (node.subcommands ?? []).map((c) => c.name) : []
  const arg = node.args?.[positionals]
  return { words: subs.filter((n) => n.startsWith(current) && !n.startsWith("_")), host: arg?.host === true }
}

interface Cache {
  readonly at: number
  readonly names: ReadonlyArray<string>
}

/** Machine names: the cache when fresh, else the relay (then the cache is rewritten), else the stale cache. */
const machineNames = Effect.gen(function* () {
  const paths = yield* CmdopPaths
  const file = path.join(paths.root, "machines_cache.json")
  const now = yield* Clock.currentTimeMillis
  const cached: Cache | undefined = yield* AtomicFile.readIfExists(file).pipe(
    Effect.map((text) => (text === undefined ? undefined : (JSON.parse(text) as Cache))),
    Effect.orElseSucceed(() => undefined)
  )
  if (cached !== undefined && now - cached.at < CACHE_MAX_AGE_MS) return cached.names
  const Remote = yield* Effect.promise(() => import("./Remote.js"))
  const fresh = yield* Remote.withClient(
    { apiKey: undefined, server: undefined, workspace: undefined, json: false, interactive: false },
    (client) => client.listMachines()
  ).pipe(
    Effect.map(({ machines }) => [...new Set(machines.flatMap((m) => [m.hostname, m.name]))].sort()),
    Effect.timeout("2 seconds"),
    Effect.option
  )
  if (fresh._tag === "None") return cached?.names ?? []
  yield* AtomicFile.ensurePrivateDir(paths.root).pipe(
    Effect.zipRight(AtomicFile.write(file, JSON.stringify({ at: now, names: fresh.value } satisfies Cache) + "\n")),
    Effect.ignore
  )
  return fresh.value
})

/** `cmdop completion <shell>` or `cmdop __complete <words…>`. */
export const run = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    if (args[0] === COMPLETE) {
      const words = args.slice(1)
      const found = candidates(words)
      const current = words[words.length - 1] ?? ""
      const hosts = found.host
        ? (yield* machineNames.pipe(Effect.orElseSucceed(() => []))).filter((n) => n.startsWith(current))
        : []
      for (const w of [...found.words, ...hosts]) yield* Console.log(w)
      return ExitCode.ok as number
    }
    const script = SCRIPTS[args[1] ?? ""]
    if (script === undefined || args.length > 2) {
      yield* Console.error(
        `cmdop: ${args[1] === undefined ? "completion needs a shell" : `no completion for "${args.slice(1).join(" ")}"`}: use cmdop completion bash|zsh|fish; see "cmdop completion --help"`
      )
      return ExitCode.usage as number
    }
    yield* Console.log(script)
    return ExitCode.ok as number
  })
