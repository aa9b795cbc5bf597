/**
 * How the CLI ends: a user-facing failure prints one line to stderr and exits 255 (like ssh); a remote command's
 * own exit code is passed through with `ExitWith`. Usage errors (exit 2) are @effect/cli's `ValidationError`s.
 */
import * as Data from "effect/Data"

/** A failure of the CLI itself, with the line the user sees. */
export class CliError extends Data.TaggedError("CliError")<{ readonly message: string; readonly exitCode?: number }> {}

/** Ends the process with this exit code and no further output (a remote exit status, 124 on timeout). */
export class ExitWith extends Data.TaggedError("ExitWith")<{ readonly code: number }> {}

/** Exit codes the CLI uses. */
export const ExitCode = { ok: 0, usage: 2, timeout: 124, failure: 255 } as const
