/**
 * @effect/cli hands an unknown flag that follows a positional argument on as one more positional word. No host
 * and no program name starts with "-", so such a word is a mistyped flag: a usage error with a suggestion.
 */
import { CliError, ExitCode } from "./CliError.js"

export const distance = (a: string, b: string): number => {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
      previous = row[j]!
      row[j] = next
    }
  }
  return row[b.length]!
}

/** True when a positional word is really a flag. */
export const isFlag = (word: string): boolean => word.startsWith("-")

/** The usage error for `flag` given to `command`, suggesting the closest of `known` (within two edits). */
export const error = (flag: string, command: string, known: ReadonlyArray<string>, hint = ""): CliError => {
  const name = flag.split("=")[0]!
  const best = known.map((k) => [k, distance(name, k)] as const).sort((x, y) => x[1] - y[1])[0]
  const suggestion = best !== undefined && best[1] <= 2 ? ` (did you mean ${best[0]}?)` : ""
  return new CliError({
    message: `unknown option ${flag} for ${command}${suggestion}${hint}`,
    exitCode: ExitCode.usage
  })
}

/** The flags every `connect` subcommand takes. */
export const globalFlags = ["--api-key", "--server", "--workspace", "--json", "--no-interactive"] as const
