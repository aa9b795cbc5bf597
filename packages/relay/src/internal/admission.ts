/**
 * Admission at the relay's edges (gRPC, the browser terminal's WebSocket and the share page): before a stream does any work, its
 * principal must have a free stream slot, and a stream that opens a new terminal session must stay within the
 * principal's session cap. Both refusals are `ResourceExhausted` with the limit in the message.
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import type { RelayError } from "@cmdop/domain/RelayError"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Caller } from "../Authenticator.js"
import type { RelayCore } from "../RelayCore.js"
import * as Limits from "./limits.js"
import { RefusalThrottle } from "./refusalThrottle.js"

/** The admission state of one relay: open streams per principal, refused credentials per source. */
export interface Admission {
  readonly streams: Limits.PrincipalGauge
  readonly refusals: RefusalThrottle
}

export const make = (): Admission => ({
  streams: new Limits.PrincipalGauge(Limits.MAX_STREAMS_PER_PRINCIPAL, "exec and terminal streams"),
  refusals: new RefusalThrottle()
})

/**
 * Fails with `ResourceExhausted` when `source` has spent its budget of refusals (`refusalThrottle.ts`): the caller
 * is refused at once, before its credential is read.
 */
export const checkSource = (admission: Admission, server: string, source: string): Effect.Effect<void, RelayError> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const wait = admission.refusals.blockedFor(source, now)
    return wait === undefined
      ? Effect.void
      : Effect.fail(
          Limits.exhausted(
            server,
            `too many refused credentials from ${source}; the relay ignores its calls for the next ${Math.ceil(wait / 1000)} s — check the key or share link, then try again`
          )
        )
  })

/** A credential from `source` was refused: one from the source's budget. */
export const noteRefused = (admission: Admission, source: string): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => admission.refusals.refused(source, now)))

/**
 * Authenticates a call from `source`, unless the source has spent its budget of refusals (`checkSource`). A
 * refused credential (`Unauthenticated`) takes one from the source's budget.
 */
export const authenticateFrom = <E extends RelayCallError>(
  admission: Admission,
  server: string,
  source: string,
  authenticate: Effect.Effect<Caller, E>
): Effect.Effect<Caller, E | RelayError> =>
  Effect.zipRight(
    checkSource(admission, server, source),
    Effect.tapError(authenticate, (e) =>
      e._tag === "AccessError" && e.reason === "Unauthenticated" ? noteRefused(admission, source) : Effect.void
    )
  )

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
