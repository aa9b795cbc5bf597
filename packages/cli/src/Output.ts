/**
 * Printing: results to stdout, notices and errors to stderr, `--json` as exactly one JSON document. Tables are
 * plain aligned columns so they read in a terminal and in CI logs alike.
 */
import * as Console from "effect/Console"
import type * as Effect from "effect/Effect"

/** Prints one JSON document on stdout. */
export const json = (value: unknown): Effect.Effect<void> => Console.log(JSON.stringify(value, null, 2))

/** Prints a line on stdout. */
export const line = (text: string): Effect.Effect<void> => Console.log(text)

/** Prints a notice on stderr (never part of a result). */
export const notice = (text: string): Effect.Effect<void> => Console.error(text)

/** Renders rows as aligned columns under a header. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const render = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  return [render(header), ...rows.map(render)].join("\n")
}
