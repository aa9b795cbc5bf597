/**
 * @effect/cli hands an unknown flag that follows a positional argument on as one more positional word. No host
 * and no program name starts with "-", so such a word is a mistyped flag: a usage error with a suggestion.
 */
import * as Nearest from "@cmdop/domain/Nearest"
import { CliError, ExitCode } from "./CliError.js"
import * as SshHabits from "./SshHabits.js"

/** True when a positional word is really a flag. */
export const isFlag = (word: string): boolean => word.startsWith("-")

/** The usage error for `flag` given to `command`, suggesting the closest of `known` (within two edits). */
export const error = (flag: string, command: string, known: ReadonlyArray<string>, hint = ""): CliError => {
  const name = flag.split("=")[0]!
  const habit = SshHabits.hint(name)
  const best = SshHabits.isShort(name) ? undefined : Nearest.nearest(name, known)
  const suggestion = habit !== undefined ? `: ${habit}` : best !== undefined ? ` (did you mean ${best}?)` : ""
  return new CliError({
    message: `unknown option ${flag} for ${command}${suggestion}${hint}`,
    exitCode: ExitCode.usage
  })
}

/** The flags every `connect` subcommand takes. */
export const globalFlags = ["--api-key", "--server", "--workspace", "--json", "--no-interactive"] as const
