/**
 * Terminal sizes as the relay accepts them from clients, before anything reaches an agent: 1 to 1000 columns
 * and rows (0 and 0 at attach: the client has no terminal, the agent's default applies). Anything else is
 * refused with `InvalidRequest` (gRPC `INVALID_ARGUMENT`) saying what is allowed.
 */
import { RelayError } from "@cmdop/domain/RelayError"
import * as Effect from "effect/Effect"

/** The largest terminal, in columns and in rows. */
export const MAX = 1000

const ok = (n: number) => Number.isInteger(n) && n >= 1 && n <= MAX

/** Checks a size; `allowZero`: both 0 (no terminal) is accepted too. */
export const check = (
  cols: number,
  rows: number,
  options: { readonly server: string; readonly allowZero?: boolean }
): Effect.Effect<void, RelayError> =>
  (options.allowZero === true && cols === 0 && rows === 0) || (ok(cols) && ok(rows))
    ? Effect.void
    : Effect.fail(
        new RelayError({
          reason: "InvalidRequest",
          server: options.server,
          detail: `invalid terminal size ${cols}x${rows}: columns and rows must each be 1 to ${MAX}`
        })
      )
