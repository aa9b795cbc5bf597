/**
 * Durations as users type them on the command line: `90s`, `5m`, `1h`, `250ms`, or bare seconds (`30`).
 */
import * as Effect from "effect/Effect"
import { CliError } from "./CliError.js"

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Milliseconds, or a `CliError` naming the accepted forms. */
export const parse = (flag: string, raw: string): Effect.Effect<number, CliError> => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim())
  if (!match)
    return Effect.fail(
      new CliError({ message: `invalid ${flag} "${raw}": use a number with a unit, e.g. 90s, 5m, 1h`, exitCode: 2 })
    )
  return Effect.succeed(Math.round(Number(match[1]) * UNITS[match[2] ?? "s"]!))
}

/** `90000` → `1m30s`. */
export const format = (ms: number): string => {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0) return `${ms / 1000}s`
  return `${ms}ms`
}
