/**
 * `cmdop relay serve --max-connections-per-source N` (env `CMDOP_RELAY_MAX_CONNECTIONS_PER_SOURCE`): how many open
 * gRPC connections one source address may hold. The relay's default (1,024) bounds what one abusive address can
 * take; behind a TCP load balancer or NAT every agent arrives from the balancer's address, so the cap must be
 * above the number of agents there.
 */
import * as Options from "@effect/cli/Options"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { CliError, ExitCode } from "../CliError.js"

/** Past this a descriptor limit cannot follow anyway (Linux's default `nr_open`). */
const MAX = 1_048_576

export const connectionOptions = {
  maxConnectionsPerSource: Options.text("max-connections-per-source").pipe(
    Options.withDescription(
      "open gRPC connections one address may hold (default 1024); behind a TCP load balancer or NAT every agent comes from its address: raise it above the agent count (env CMDOP_RELAY_MAX_CONNECTIONS_PER_SOURCE)"
    ),
    Options.withFallbackConfig(Config.string("CMDOP_RELAY_MAX_CONNECTIONS_PER_SOURCE")),
    Options.optional
  )
}

/**
 * The cap the flag (or its variable) asks for, `undefined` when neither is given; a usage error for anything but a
 * whole number from 1 up. (The flag's own "not a whole number" is caught earlier, with the other flags; the
 * variable's is caught here.)
 */
export const maxConnectionsPerSource = (args: {
  readonly maxConnectionsPerSource: Option.Option<string>
}): Effect.Effect<number | undefined, CliError> => {
  if (Option.isNone(args.maxConnectionsPerSource)) return Effect.succeed(undefined)
  const raw = args.maxConnectionsPerSource.value.trim()
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
  return Number.isInteger(n) && n >= 1 && n <= MAX
    ? Effect.succeed(n)
    : Effect.fail(
        new CliError({
          message: `invalid --max-connections-per-source (or CMDOP_RELAY_MAX_CONNECTIONS_PER_SOURCE) "${raw}": use a whole number from 1 to ${MAX}, e.g. 20000 behind a load balancer`,
          exitCode: ExitCode.usage
        })
      )
}
