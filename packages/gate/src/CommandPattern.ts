/**
 * Command patterns: how a rule's `command: "journalctl -u nginx *"` matches a command. A pattern is a list of words
 * (split on spaces; quote a word to keep spaces in it). The command is a list of words too (argv, or a simple
 * command read from a shell line). Word i of the pattern must match word i of the command:
 * - a word is a glob over ONE argument (`*` and `?` never cross `/`, `**` does, wildcards never match a `.` or `..`
 *   path segment), so `cat /var/log/*` admits `cat /var/log/syslog` but not `cat /var/log/../../etc/shadow`, and
 *   never lets one `*` swallow several arguments;
 * - a last word that is exactly `*` stands for "any further arguments, zero or more", so `ls *` admits `ls`,
 *   `ls -la /tmp` and `ls /`.
 * - a pattern that is just `*` matches any command the gate can read.
 * A word whose value the gate cannot know (`$HOME`, `$(…)`, `{a,b}`) matches only inside that trailing `*`, and
 * never as the program.
 */
import picomatch from "picomatch"

/** One word of a command as the gate sees it. `known: false` means its value is decided only when it runs. */
export interface ArgWord {
  readonly text: string
  readonly known: boolean
}

/** A compiled pattern. */
export interface CommandPattern {
  readonly source: string
  readonly words: ReadonlyArray<(text: string) => boolean>
  /** The pattern ended in a bare `*`: further arguments of any kind are admitted. */
  readonly rest: boolean
}

const GLOB_OPTIONS: picomatch.PicomatchOptions = {
  dot: true,
  nobrace: true,
  noextglob: true,
  nonegate: true,
  windows: false
}

/** Splits a pattern into words: spaces separate, `'…'` and `"…"` group. Fails on an unclosed quote. */
export const splitPattern = (source: string): ReadonlyArray<string> | string => {
  const words: Array<string> = []
  let current = ""
  let started = false
  let quote: string | undefined
  for (const ch of source) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined
      else current += ch
    } else if (ch === "'" || ch === '"') {
      quote = ch
      started = true
    } else if (/\s/.test(ch)) {
      if (started) words.push(current)
      current = ""
      started = false
    } else {
      current += ch
      started = true
    }
  }
  if (quote !== undefined) return `unclosed ${quote} quote`
  if (started) words.push(current)
  return words.length === 0 ? "empty command pattern" : words
}

/** Compiles a pattern, or returns what is wrong with it. */
export const compile = (source: string): CommandPattern | string => {
  const split = splitPattern(source)
  if (typeof split === "string") return split
  const rest = split[split.length - 1] === "*"
  const fixed = rest ? split.slice(0, -1) : split
  const words = fixed.map((word) => {
    const isMatch = picomatch(word, GLOB_OPTIONS)
    return (text: string) => isMatch(text)
  })
  return { source, words, rest }
}

/** Whether the command's words match the pattern (see the module comment for the rules). */
export const matches = (pattern: CommandPattern, command: ReadonlyArray<ArgWord>): boolean => {
  const n = pattern.words.length
  if (command[0]?.known !== true) return false
  if (pattern.rest ? command.length < n : command.length !== n) return false
  for (let i = 0; i < n; i++) {
    const word = command[i]!
    if (!word.known || !pattern.words[i]!(word.text)) return false
  }
  return true
}

const cache = new Map<string, CommandPattern | string>()

/** `compile` with a process-wide cache (patterns come from a handful of policy files). */
export const compileCached = (source: string): CommandPattern | string => {
  let compiled = cache.get(source)
  if (compiled === undefined) {
    compiled = compile(source)
    if (cache.size > 10_000) cache.clear()
    cache.set(source, compiled)
  }
  return compiled
}
