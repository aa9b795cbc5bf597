/**
 * Admission at the relay's edges (gRPC and the browser terminal's WebSocket): before a stream does any work, its
 * principal must have a free stream slot, and a stream that opens a new terminal session must stay within the
 * principal's session cap. Both refusals are `ResourceExhausted` with the limit in the message.
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Caller } from "../Authenticator.js"
import type { RelayCore } from "../RelayCore.js"
import * as Limits from "./limits.js"

/** The admission state of one relay: open streams per principal. */
export interface Admission {
  readonly streams: Limits.PrincipalGauge
}

export const make = (): Admission => ({
  streams: new Limits.PrincipalGauge(Limits.MAX_STREAMS_PER_PRINCIPAL, "exec and terminal streams")
})

const keyOf = (caller: Caller) => `${caller.workspaceId}/${caller.principal}`

/** Takes one of the caller's stream slots for the life of the scope. */
export const holdStream = (
  admission: Admission,
  server: string,
  caller: Caller
): Effect.Effect<void, RelayCallError, Scope.Scope> => admission.streams.hold(server, keyOf(caller), caller.principal)

/** Fails when the caller already owns `MAX_PTYS_PER_PRINCIPAL` live sessions on the machine. */
export const checkNewPty = (
  core: RelayCore["Type"],
  caller: Caller,
  machine: string
): Effect.Effect<void, RelayCallError> =>
  Effect.flatMap(core.listSessions(caller, machine), ({ sessions }) => {
    const own = sessions.filter((s) => s.owner === caller.principal).length
    return own >= Limits.MAX_PTYS_PER_PRINCIPAL
      ? Effect.fail(
          Limits.exhausted(
            core.server,
            `${caller.principal} already has ${own} terminal sessions on ${machine}, the relay's limit; close one (or join it with --session) and try again`
          )
        )
      : Effect.void
  })
