/**
 * The agent's session engine, independent of the transport: it serves the sessions the relay multiplexes over one
 * link (in production the `AgentService.Connect` stream, after the Hello/Welcome handshake; in tests a queue).
 *
 * Exec sessions (`SessionOpen` with `exec`, `internal/execSessions.ts`): the command runs through `ProcessRunner` in
 * its own scope; its stdout and stderr go out as `SessionOutput` chunks of at most `MAX_CHUNK` (256 KiB) bytes, never
 * more than `window` bytes unacknowledged (stdout and stderr share one credit, replenished by the relay's
 * `SessionAck` for PIPE_STDOUT / PIPE_STDERR). A session without credit stops reading its pipes, so its command
 * blocks; other sessions and heartbeats carry on. Stdin (`SessionInput`) is written in order and each written chunk
 * is acknowledged with a PIPE_STDIN `SessionAck`.
 *
 * Interactive sessions (`SessionOpen` with `pty`, `internal/ptyPumps.ts`) live in `PtySessions` (given in
 * `Options.ptySessions`; without it they are refused with 126 and `PTY_UNSUPPORTED`), not in the engine: they
 * outlive the link. The engine runs one output pump per PTY session on this link, which sends the session's output
 * from an offset, as it comes:
 * - `open` (pty) starts the session (refused with a lone `SessionExit`: 127 and `command not found: …` when the
 *   shell/command does not exist, 126 and the error otherwise, including a duplicate id) and its pump from offset 0;
 * - `replay` {session_id, from_offset} stops this link's pump of that session (if any) and starts a new one from
 *   `from_offset`, clamped to `[oldest byte still in the agent's scrollback, total output]`. The replayed bytes and
 *   then live output follow as `SessionOutput` with `pipe = PIPE_STDOUT`, `offset` = offset of `data[0]`, offsets
 *   contiguous (each message's offset is the previous one's offset + length), `data` ≤ `MAX_CHUNK`. A replay resets
 *   the session's credit to the full window (count everything sent before it as acknowledged). A replay of an
 *   unknown session gets a lone `SessionExit` (126, error `unknown session`); of a session whose exit this link
 *   already reported, nothing.
 * - output credit as for exec, acknowledged with `SessionAck` PIPE_STDOUT; `input` is written to the PTY and
 *   acknowledged with PIPE_STDIN `SessionAck`s in batches of `inputAckBatch(window)` bytes (each input when the
 *   window is 64 KiB or less; `eof` is ignored: a terminal has no end of input; send 0x04 for that); `resize`
 *   resizes the terminal; `signal` goes to its foreground process group; `close` kills its process tree. Messages
 *   for ids the agent does not know are ignored (no ack).
 * - when the session ends (shell exit, `close`, idle timeout), the pump sends its remaining output, then exactly one
 *   `SessionExit`: `exit_code` (signal n: 128 + n and `signal` set), `error` = `""` when the shell exited by itself,
 *   `"closed"` after `close` (or daemon shutdown), `"idle"` after the idle timeout; `duration_ms` since the open.
 *
 * How things end:
 * - an exec session ends with exactly one `SessionExit`, after its last `SessionOutput`, once the output reached
 *   end-of-file and the command exited. `SessionClose` kills the process tree and drops output not yet sent (the
 *   reader is gone); the `SessionExit` still follows. `SessionSignal` only delivers the signal.
 * - a session that never ran (duplicate id; no spec; PTY without `PtySessions`) gets a lone `SessionExit` with
 *   `error`.
 * - `serve` returns when `incoming` ends, fails with the link's error when `incoming` or `send` fails, and fails with
 *   `RelaySilentError` when nothing arrives for `relaySilenceTimeout`. In every case all exec sessions are killed
 *   and this link's PTY pumps stopped before it completes; no `SessionExit` is sent for them (the link is gone).
 *   PTY sessions keep running; the next link reports them in Hello and the relay asks for their output with replay.
 *   A PTY session that ends while no link is up is never reported (it is simply absent from the next Hello).
 *
 * The machine's gate (given in `Options.gate`, `Gate.ts`): every `SessionOpen` is decided before anything runs
 * (`internal/gatedOpen.ts`); a held session's messages wait for the decision, a refused one gets a lone
 * `SessionExit` 126 with `gateDenied`. An `Attach` open runs nothing: it asks whether the caller may join a live PTY
 * session, answered by a lone `SessionExit` (0 admitted). Without a gate every session is admitted.
 *
 * The machine's audit log (given in `Options.auditLog`; without it nothing is recorded): every exec and PTY open
 * (`session_open`, with `SessionOpen.caller` and the command's digest) and every end (`session_end` with the exit
 * code; a PTY session's end is recorded when it happens, whether or not a link is up then; an exec session cut off by
 * the link's end as `"link closed"`). PTY input is attributed to `SessionInput.caller`: a keystroke only adds its
 * byte count to a tally per session and caller, which a background fiber writes as one `input` line per
 * `INPUT_COALESCE` burst (and before the session's end, and when `serve` ends). A failed audit write is logged as a
 * warning; the session goes on.
 */
import type { AgentMessage, RelayMessage } from "@cmdop/domain/AgentLink"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as AuditLog from "./AuditLog.js"
import type { Gate } from "./Gate.js"
import * as EngineContext from "./internal/engineContext.js"
import * as ExecSessions from "./internal/execSessions.js"
import * as GatedOpen from "./internal/gatedOpen.js"
import * as LinkLoop from "./internal/linkLoop.js"
import * as PtyPumps from "./internal/ptyPumps.js"
import { RelaySilentError } from "./internal/relaySilentError.js"
import { ProcessRunner } from "./ProcessRunner.js"
import type { PtySessions } from "./PtySessions.js"

export { coalesce, MAX_CHUNK } from "./internal/outputChunks.js"
export { inputAckBatch, PTY_UNSUPPORTED, UNKNOWN_SESSION } from "./internal/ptyPumps.js"
export { RelaySilentError } from "./internal/relaySilentError.js"

/** One agent stream as the engine sees it. */
export interface Link<E = never> {
  /** The relay's messages, after the handshake. Its end ends `serve`; its failure fails it. */
  readonly incoming: Stream.Stream<RelayMessage, E>
  /** Sends one message; called from many fibers. A failure ends `serve` with that error. */
  readonly send: (message: AgentMessage) => Effect.Effect<void, E>
}

export interface Options {
  /** Bytes of one session's output that may be unacknowledged (stdout and stderr together). */
  readonly window: number
  /** Time between the agent's heartbeats; zero or less disables them. */
  readonly heartbeatInterval: Duration.DurationInput
  /** `serve` fails with `RelaySilentError` when the relay sends nothing for this long; infinite disables it. */
  readonly relaySilenceTimeout: Duration.DurationInput
  /** The machine's interactive sessions (they outlive the link); without it PTY sessions are refused. */
  readonly ptySessions?: PtySessions["Type"]
  /** The machine's audit log (see the module header); without it nothing is recorded. */
  readonly auditLog?: AuditLog.AuditLog["Type"]
  /**
   * The machine's gate (`Gate.ts`): every `SessionOpen` passes it first; without it every session is admitted.
   * `machine` names the machine to a held exec's caller: its hostname, as the relay names it.
   */
  readonly gate?: { readonly gate: Gate["Type"]; readonly machine: string }
}

/** PTY input of one caller into one session within this long becomes one `input` line of the audit log. */
export const INPUT_COALESCE = Duration.seconds(1)

/** Serves sessions over `link` until it ends (see the module header). */
export const serve = <E>(link: Link<E>, options: Options): Effect.Effect<void, E | RelaySilentError, ProcessRunner> =>
  Effect.scoped(
    Effect.gen(function* () {
      const runner = yield* ProcessRunner
      const ctx = yield* EngineContext.make(link, options)
      const exec = ExecSessions.make(ctx, runner)
      const pty = PtyPumps.make(ctx, options.ptySessions)
      const gated =
        options.gate === undefined ? undefined : GatedOpen.make(ctx, options.gate.gate, options.gate.machine)
      if (options.auditLog !== undefined) {
        yield* Effect.forkScoped(
          Effect.forever(Effect.zipRight(Effect.sleep(INPUT_COALESCE), Effect.uninterruptible(ctx.audit.flushInput())))
        )
        yield* Effect.addFinalizer(() => ctx.audit.flushInput())
      }
      yield* LinkLoop.heartbeats(ctx, options.heartbeatInterval)
      const loop = LinkLoop.runWatched(
        link.incoming,
        options.relaySilenceTimeout,
        LinkLoop.dispatch(ctx, exec, pty, gated)
      )
      yield* Effect.raceFirst(loop, ctx.failed)
    })
  ).pipe(Effect.withSpan("AgentEngine.serve"))
