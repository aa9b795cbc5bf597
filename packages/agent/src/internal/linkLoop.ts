/**
 * The link's message loop: each relay message goes to the exec session or the PTY pump it names (exec first);
 * messages for ids the agent does not know are ignored. Besides the loop: the agent's heartbeats, and the relay
 * silence timeout.
 */
import type { RelayMessage } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import { Pipe } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { RelaySilentError } from "./relaySilentError.js"
import type { EngineContext } from "./engineContext.js"
import type { ExecSessions } from "./execSessions.js"
import type { PtyPumps } from "./ptyPumps.js"

/** Routes one relay message. Never fails: a failed send surfaces through the engine context. */
export const dispatch =
  <E>(ctx: EngineContext<E>, exec: ExecSessions, pty: PtyPumps) =>
  (message: RelayMessage): Effect.Effect<void> => {
    const kind = message.kind
    switch (kind?.$case) {
      case "open": {
        const { sessionId: id, kind: what, caller } = kind.value
        if (id === "") return Effect.void
        if (exec.has(id) || pty.has(id)) return ctx.reject(id, `session ${id} is already open`)
        if (what === undefined) return ctx.reject(id, "the session asks for neither exec nor pty")
        return what.$case === "pty" ? pty.open(id, what.value, caller) : exec.open(id, what.value, caller)
      }
      case "input": {
        const { sessionId, data, eof, caller } = kind.value
        return orElse(exec.input(sessionId, data, eof, caller), pty.input(sessionId, data, caller))
      }
      case "ack": {
        const { sessionId, pipe, bytes } = kind.value
        if (pipe !== Pipe.PIPE_STDOUT && pipe !== Pipe.PIPE_STDERR) return Effect.void
        return orElse(exec.ack(sessionId, bytes), pty.ack(sessionId, bytes))
      }
      case "signal":
        return orElse(
          exec.signal(kind.value.sessionId, kind.value.signal),
          pty.signal(kind.value.sessionId, kind.value.signal)
        )
      case "resize":
        // Exec sessions have no terminal.
        return pty.resize(kind.value.sessionId, kind.value.cols, kind.value.rows)
      case "close":
        return orElse(exec.close(kind.value.sessionId), pty.close(kind.value.sessionId))
      case "replay":
        return pty.replay(kind.value)
      default:
        // welcome (already handled by the transport), heartbeat (any message proves liveness), and message kinds
        // from newer relays.
        return Effect.void
    }
  }

/** Runs `otherwise` when `first` found no session to act on. */
const orElse = (first: Effect.Effect<boolean>, otherwise: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.flatMap(first, (handled) => (handled ? Effect.void : otherwise))

/** Sends a heartbeat every `interval` (none when it is zero or less), in the current scope. */
export const heartbeats = <E>(ctx: EngineContext<E>, interval: Duration.DurationInput) =>
  Effect.suspend(() => {
    const every = Duration.decode(interval)
    if (!(Duration.toMillis(every) > 0)) return Effect.void
    const beat = Effect.flatMap(Clock.currentTimeMillis, (at) =>
      ctx.send({ kind: { $case: "heartbeat", value: { at } } })
    )
    return Effect.flatMap(Effect.scope, (scope) =>
      ctx.supervise(Effect.forever(Effect.zipRight(Effect.sleep(every), beat)), scope)
    )
  })

/** `incoming`, failing with `RelaySilentError` when nothing arrives for `timeout` (infinite or zero: never). */
export const failOnSilence = <A, E>(
  incoming: Stream.Stream<A, E>,
  timeout: Duration.DurationInput
): Stream.Stream<A, E | RelaySilentError> => {
  const silence = Duration.decode(timeout)
  return Duration.isFinite(silence) && Duration.toMillis(silence) > 0
    ? Stream.timeoutFail(incoming, () => new RelaySilentError({ timeout: silence }), silence)
    : incoming
}
