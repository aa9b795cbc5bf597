/**
 * The link's message loop: each relay message goes to the exec session or the PTY pump it names (exec first);
 * messages for ids the agent does not know are ignored. Besides the loop: the agent's heartbeats, and the relay
 * silence timeout.
 */
import type { RelayMessage } from "@cmdop/domain/AgentLink"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as Stream from "effect/Stream"
import { RelaySilentError } from "./relaySilentError.js"
import type { EngineContext } from "./engineContext.js"
import type { ExecSessions } from "./execSessions.js"
import type { GatedOpen } from "./gatedOpen.js"
import type { PtyPumps } from "./ptyPumps.js"

/** Routes one relay message. Never fails: a failed send surfaces through the engine context. */
export const dispatch =
  <E>(ctx: EngineContext<E>, exec: ExecSessions, pty: PtyPumps, gated?: GatedOpen) =>
  (message: RelayMessage): Effect.Effect<void> => {
    // A session waiting for the gate's decision gets its messages once it starts, but a close or an interrupt ends
    // the wait (`gatedOpen.ts`).
    if (gated !== undefined && "sessionId" in message && message._tag !== "SessionOpen") {
      if (gated.ends(message)) return Effect.void
      if (gated.keep(message.sessionId, message)) return Effect.void
    }
    switch (message._tag) {
      case "SessionOpen": {
        const { sessionId: id, spec, caller } = message
        if (id === "") return Effect.void
        if (exec.has(id) || pty.has(id) || gated?.has(id)) return ctx.reject(id, `session ${id} is already open`)
        const start =
          spec._tag === "Pty"
            ? pty.open(id, spec, caller)
            : spec._tag === "Exec"
              ? exec.open(id, spec, caller)
              : // An attach check runs nothing: admitted is a lone SessionExit 0.
                ctx.supervise(ctx.sendExit(id, { exitCode: 0, timedOut: false }), ctx.sessionsScope)
        return gated === undefined ? start : gated.open(message, start, dispatch(ctx, exec, pty))
      }
      case "SessionInput": {
        const { sessionId, data, eof, caller } = message
        return orElse(exec.input(sessionId, data, eof, caller), pty.input(sessionId, data, caller))
      }
      case "SessionAck": {
        const { sessionId, pipe, bytes } = message
        // Stdin acks are for the relay; the agent counts only its own output.
        if (pipe === "stdin") return Effect.void
        return orElse(exec.ack(sessionId, bytes), pty.ack(sessionId, bytes))
      }
      case "SessionSignal":
        return orElse(exec.signal(message.sessionId, message.signal), pty.signal(message.sessionId, message.signal))
      case "SessionResize":
        // Exec sessions have no terminal.
        return pty.resize(message.sessionId, message.cols, message.rows)
      case "SessionClose":
        return orElse(exec.close(message.sessionId), pty.close(message.sessionId))
      case "SessionReplay":
        return pty.replay(message)
      case "ApprovalAnswer": {
        const gate = ctx.options.gate?.gate
        return gate === undefined
          ? Effect.void
          : Effect.asVoid(
              gate.approvals.answer(message.approvalId, {
                approve: message.approve,
                forLink: message.forLink,
                approver: message.approver
              })
            )
      }
      case "Welcome":
      case "Heartbeat":
        // Welcome was handled by the transport; any message proves liveness.
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
    const gate = ctx.options.gate?.gate
    // With a gate, each heartbeat says whether a permissions.yaml is in force (it may appear or go meanwhile).
    const beat = Effect.flatMap(Clock.currentTimeMillis, (at) =>
      gate === undefined
        ? ctx.send({ _tag: "Heartbeat", at })
        : Effect.flatMap(gate.configured, (gateConfigured) => ctx.send({ _tag: "Heartbeat", at, gateConfigured }))
    )
    return Effect.flatMap(Effect.scope, (scope) =>
      ctx.supervise(Effect.forever(Effect.zipRight(Effect.sleep(every), beat)), scope)
    )
  })

/**
 * Runs `handle` for each of `incoming`'s messages; fails with `RelaySilentError` when nothing arrives for `timeout`
 * (infinite or zero: never). One watchdog fiber for the whole link, which sleeps until the silence would be due:
 * a message costs one clock read, not a timer of its own.
 */
export const runWatched = <A, E, E2>(
  incoming: Stream.Stream<A, E>,
  timeout: Duration.DurationInput,
  handle: (message: A) => Effect.Effect<void, E2>
): Effect.Effect<void, E | E2 | RelaySilentError> =>
  Effect.flatMap(Effect.clock, (clock) => {
    const silence = Duration.decode(timeout)
    if (!(Duration.isFinite(silence) && Duration.toMillis(silence) > 0)) return PullStream.runForEach(incoming, handle)
    const limit = Duration.toMillis(silence)
    let last = clock.unsafeCurrentTimeMillis()
    const watchdog: Effect.Effect<never, RelaySilentError> = Effect.suspend(() => {
      const quiet = clock.unsafeCurrentTimeMillis() - last
      return quiet >= limit
        ? Effect.fail(new RelaySilentError({ timeout: silence }))
        : Effect.zipRight(Effect.sleep(Duration.millis(limit - quiet)), watchdog)
    })
    const run = PullStream.runForEach(incoming, (message) => {
      last = clock.unsafeCurrentTimeMillis()
      return handle(message)
    })
    return Effect.raceFirst(run, watchdog)
  })
