/**
 * Printing: results to stdout, notices and errors to stderr, `--json` as exactly one JSON document. Tables are
 * plain aligned columns so they read in a terminal and in CI logs alike.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"

/** Whether this invocation has printed its JSON document (so a failure after it prints no second one). */
export const printedJson: FiberRef.FiberRef<boolean> = FiberRef.unsafeMake(false)

/** Prints one JSON document on stdout. */
export const json = (value: unknown): Effect.Effect<void> =>
  Effect.zipRight(Console.log(JSON.stringify(value, null, 2)), FiberRef.set(printedJson, true))

/**
 * A failure as `--json` reports it, the same for every command: `error` is the line printed on stderr (without
 * "cmdop: "), `hint` its how-to-fix part (after the first "; "), `exit_code` the process's exit code.
 */
export const failure = (
  line: string,
  exitCode: number
): { readonly error: string; readonly hint: string | null; readonly exit_code: number } => {
  const at = line.indexOf("; ")
  return { error: line, hint: at === -1 ? null : line.slice(at + 2), exit_code: exitCode }
}

/** Prints a line on stdout. */
export const line = (text: string): Effect.Effect<void> => Console.log(text)

/** Prints a notice on stderr (never part of a result). */
export const notice = (text: string): Effect.Effect<void> => Console.error(text)

/**
 * `text` safe to print to a terminal: control characters (C0, DEL, C1) shown as `\xHH`. What a listing prints is
 * often someone else's text — a machine's display name (registered before names were checked), a session's command
 * line, a reason — and an escape sequence printed raw would recolour, retitle or write the clipboard of the terminal
 * that lists it. (`--json` output is safe as it is: JSON escapes them.)
 */
export const printable = (text: string): string =>
  text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)

/** Renders rows as aligned columns under a header, every cell `printable`. */
export const table = (header: ReadonlyArray<string>, cells: ReadonlyArray<ReadonlyArray<string>>): string => {
  const rows = cells.map((r) => r.map(printable))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const render = (row: ReadonlyArray<string>) =>
    row
      .map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  return [render(header), ...rows.map(render)].join("\n")
}
