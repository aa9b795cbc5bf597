/**
 * The agent's interactive (PTY) sessions. One service for the whole daemon process: sessions OUTLIVE relay
 * connections (the daemon reconnects, the shells keep running), so the engine of each connection only attaches
 * output pumps to them (`output`) and forwards input, resizes and signals by session id.
 *
 * Each session is a node-pty process running the shell as a login shell (`<shell> -l`), or `PtySpec.command` when
 * given, in the home directory, with `TERM` from the spec (default `xterm-256color`) and the spec's size (default
 * 80×24). Its output goes into a scrollback ring of the last `ringBytes` (1 MiB) bytes, addressed by absolute offsets in the
 * session's whole output (the first byte it ever printed is offset 0), so any reader can resume exactly where it
 * stopped as long as its bytes are still in the ring.
 *
 * How a session ends (its `PtyExit.reason`):
 * - `"exit"`: the shell exited by itself (`exit 3` → exitCode 3; killed by signal n → 128 + n, `signal` its name);
 * - `"closed"`: `close` (or the service's scope closing) killed its whole process tree (every process of the PTY's
 *   login session: SIGHUP + SIGTERM, SIGKILL after the grace);
 * - `"idle"`: no input and no output for `idleTimeout` (12 hours): killed like `close`.
 * An ended session is no longer listed, refuses input, but its `output` (the ring) and `exited` stay readable for
 * `retainExited` (1 minute), so a pump that attaches late still drains it; then it is forgotten.
 *
 * The process plumbing (node-pty, the scrollback, signals and kills of the tree) is in `internal/ptyProcess.ts`.
 */
import type { PtySessionInfo, PtySpec } from "@cmdop/domain/AgentLink"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as ChildLedger from "./ChildLedger.js"
import * as PtyProcess from "./internal/ptyProcess.js"
import * as processTree from "./internal/processTree.js"

/** Bytes of recent output each session keeps for replay. */
export const DEFAULT_RING_BYTES = 1024 * 1024

/** How long a session may go without input or output before it is closed. */
export const DEFAULT_IDLE_TIMEOUT = Duration.hours(12)

export { DEFAULT_TERM, defaultShell, MAX_READ } from "./internal/ptyProcess.js"

/** Why a session ended: see the module header. */
export type ExitReason = "exit" | "closed" | "idle"

/** How a session ended. */
export interface PtyExit {
  /** The shell's exit status; killed by signal n: 128 + n. */
  readonly exitCode: number
  /** The killing signal's name without `SIG` (`"HUP"`), when it died of one. */
  readonly signal?: string
  readonly reason: ExitReason
  /** From spawn to exit. */
  readonly durationMs: number
}

/** A piece of a session's output: `data[0]` is byte `offset` of the session's whole output. */
export interface PtyOutput {
  readonly offset: number
  /** At most `MAX_READ` bytes; a copy the reader owns. */
  readonly data: Uint8Array
}

/** One input burst (one `write`), for the machine's audit log. */
export interface InputEvent {
  readonly sessionId: string
  /** Who typed it (`Caller.principal`); `""` when the relay did not say. */
  readonly principal: string
  readonly bytes: number
  /** Epoch milliseconds. */
  readonly at: number
}

/**
 * A PTY operation that could not be done. `reason`:
 * - `NotFound`: no such session (never opened, or forgotten after it ended);
 * - `Ended`: the session has ended (input, resize and signals are refused);
 * - `AlreadyExists`: `open` with the id of a session still known;
 * - `CommandNotFound`: the shell / command is not on disk or not on `PATH` (report as exit code 127);
 * - `SpawnFailed`: anything else that kept it from starting (report as exit code 126).
 */
export class PtySessionError extends Data.TaggedError("PtySessionError")<{
  readonly reason: "NotFound" | "Ended" | "AlreadyExists" | "CommandNotFound" | "SpawnFailed"
  readonly sessionId: string
  readonly detail: string
}> {
  override get message(): string {
    return this.detail
  }
}

/** The interactive sessions of this machine. */
export class PtySessions extends Context.Tag("@cmdop/agent/PtySessions")<
  PtySessions,
  {
    /** Starts session `id` (the relay chooses ids) for `owner` (the opener's principal). */
    readonly open: (id: string, spec: PtySpec, owner: string) => Effect.Effect<PtySessionInfo, PtySessionError>
    /** Writes input to the PTY, attributed to `principal` (logged at debug level and published on `inputs`). */
    readonly write: (id: string, data: Uint8Array, principal: string) => Effect.Effect<void, PtySessionError>
    /** Resizes the terminal (the foreground program gets SIGWINCH); zero or absurd sizes are ignored. */
    readonly resize: (id: string, cols: number, rows: number) => Effect.Effect<void, PtySessionError>
    /**
     * Delivers a signal (`"INT"`, `"SIGTERM"`, …) to the terminal's foreground process group, as the terminal driver
     * does for Ctrl-C (falls back to the shell's group). Unknown names are logged and ignored.
     */
    readonly signal: (id: string, name: string) => Effect.Effect<void, PtySessionError>
    /**
     * Kills the session's process tree (reason `"closed"` unless it already ended or is being killed) and waits
     * for its end. The kill goes on in the service's scope even when the caller is interrupted.
     */
    readonly close: (id: string) => Effect.Effect<PtyExit, PtySessionError>
    /** The live sessions (ended ones are not listed), oldest first, as Hello reports them. */
    readonly list: Effect.Effect<ReadonlyArray<PtySessionInfo>>
    /**
     * The session's output from `fromOffset` (clamped to `[oldest byte in the ring, total]`): first what the ring
     * holds, then live output, in order, without gaps or duplicates (the offsets are contiguous), ending once the
     * session ended and everything was read. A reader that falls more than the ring's size behind skips to the
     * oldest byte still held (the next offset jumps). Pull-based: nothing is buffered per reader.
     */
    readonly output: (id: string, fromOffset: number) => Stream.Stream<PtyOutput, PtySessionError>
    /**
     * One step of `output` for a reader that loops itself (the link's output pump: no stream stages between a
     * keystroke's echo and the relay): the piece at `cursor` (clamped as in `output`) and the cursor after it,
     * waiting for it; `None` once the session ended and everything was read.
     */
    readonly read: (
      id: string,
      cursor: number
    ) => Effect.Effect<Option.Option<readonly [PtyOutput, number]>, PtySessionError>
    /** Waits for the session's end. */
    readonly exited: (id: string) => Effect.Effect<PtyExit, PtySessionError>
    /** Every input burst from now on (subscribe before the input arrives). */
    readonly inputs: Stream.Stream<InputEvent>
  }
>() {}

/** Tuning for {@link make}. */
export interface Options {
  /** Close sessions without input or output for this long. Default 12 hours. */
  readonly idleTimeout?: Duration.DurationInput
  /** Bytes of output kept per session. Default 1 MiB. */
  readonly ringBytes?: number
  /** The shell for sessions without `command`. Default `$SHELL`, else the user's login shell, else `/bin/sh`. */
  readonly shell?: string
  /** How often idle and forgotten sessions are looked for. Default a quarter of the shorter timeout, ≤ 1 minute. */
  readonly reapInterval?: Duration.DurationInput
  /** How long an ended session stays readable (`output`, `exited`). Default 1 minute. */
  readonly retainExited?: Duration.DurationInput
  /** Between SIGTERM and SIGKILL when a session is killed. Default 2 seconds. */
  readonly killGrace?: Duration.DurationInput
  /** Where each shell is listed while it runs (see `ChildLedger`). Default: nowhere. */
  readonly ledger?: ChildLedger.ChildLedger
}

/** Builds the service; closing the scope kills every live session (reason `"closed"`) and waits for them. */
export const make = (options: Options = {}): Effect.Effect<PtySessions["Type"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const clock = yield* Effect.clock
    const ringBytes = options.ringBytes ?? DEFAULT_RING_BYTES
    const grace = options.killGrace ?? Duration.seconds(2)
    const shell = options.shell ?? PtyProcess.defaultShell()
    const ledger = options.ledger ?? ChildLedger.none
    const sessions = new Map<string, PtyProcess.PtyProcess>()
    const inputs = yield* PubSub.unbounded<InputEvent>()

    const { find, findLive } = lookup(sessions)

    /** Starts killing the tree (once); the kill runs in the service's scope. */
    const kill = (session: PtyProcess.PtyProcess, reason: ExitReason): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (session.ended !== undefined || session.killing !== undefined) return Effect.void
        session.killing = reason
        return Effect.asVoid(Effect.forkIn(PtyProcess.killTree(session, grace), scope))
      })

    const open = Effect.fn("PtySessions.open")(function* (id: string, spec: PtySpec, owner: string) {
      if (sessions.has(id))
        return yield* new PtySessionError({
          reason: "AlreadyExists",
          sessionId: id,
          detail: `session ${id} is already open`
        })
      const session = yield* PtyProcess.spawn(id, spec, { shell, owner, ringBytes, clock }).pipe(
        Effect.mapError((e) => new PtySessionError({ reason: e.reason, sessionId: id, detail: e.detail }))
      )
      sessions.set(id, session)
      yield* ledger.record("session", session.pid)
      yield* Effect.forkIn(Effect.zipRight(Deferred.await(session.exit), ledger.forget(session.pid)), scope)
      yield* Effect.logDebug("pty session opened").pipe(
        Effect.annotateLogs({ session_id: id, owner, command: session.command, pid: session.pid })
      )
      return info(session)
    })

    const signal = Effect.fn("PtySessions.signal")(function* (id: string, name: string) {
      const session = yield* findLive(id)
      const sig = processTree.normalizeSignal(name)
      if (sig === undefined) return yield* Effect.logWarning(`ignoring unknown signal ${JSON.stringify(name)}`)
      PtyProcess.signalForeground(session, sig)
    })

    yield* reapIdle(sessions, options, clock, (session) =>
      Effect.zipRight(
        Effect.logInfo("closing idle pty session").pipe(Effect.annotateLogs("session_id", session.id)),
        kill(session, "idle")
      )
    )
    yield* Effect.addFinalizer(() => killAll(sessions, grace))

    return PtySessions.of({
      open,
      // Not traced: one call per keystroke.
      write: (id, data, principal) =>
        Effect.flatMap(findLive(id), (session) => writeInput(session, data, principal, clock, inputs)),
      resize: Effect.fn("PtySessions.resize")(function* (id: string, cols: number, rows: number) {
        PtyProcess.resize(yield* findLive(id), cols, rows)
      }),
      signal,
      close: Effect.fn("PtySessions.close")(function* (id: string) {
        const session = yield* find(id)
        yield* kill(session, "closed")
        return yield* Deferred.await(session.exit)
      }),
      list: Effect.sync(() => [...sessions.values()].filter((s) => s.ended === undefined).map(info)),
      output: (id, fromOffset) =>
        Stream.unwrap(
          Effect.map(find(id), (session) =>
            Stream.unfoldEffect(Math.min(Math.max(0, fromOffset), session.ring.total), (cursor) =>
              PtyProcess.nextOutput(session, cursor)
            )
          )
        ),
      read: (id, cursor) =>
        Effect.flatMap(find(id), (session) =>
          PtyProcess.nextOutput(session, Math.min(Math.max(0, cursor), session.ring.total))
        ),
      exited: (id) => Effect.flatMap(find(id), (session) => Deferred.await(session.exit)),
      inputs: Stream.fromPubSub(inputs)
    })
  })

/** The service for the whole daemon (see {@link make}). */
export const layer = (options: Options = {}): Layer.Layer<PtySessions> => Layer.scoped(PtySessions, make(options))

/**
 * In the current scope, every `reapInterval`: closes sessions idle for `idleTimeout` (with `close`), and forgets
 * ended ones after `retainExited`.
 */
const reapIdle = (
  sessions: Map<string, PtyProcess.PtyProcess>,
  options: Options,
  clock: Clock.Clock,
  close: (session: PtyProcess.PtyProcess) => Effect.Effect<void>
) => {
  const idleMillis = Duration.toMillis(options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT)
  const retainMillis = Duration.toMillis(options.retainExited ?? Duration.minutes(1))
  const reapMillis =
    options.reapInterval !== undefined
      ? Duration.toMillis(options.reapInterval)
      : Math.max(10, Math.min(60_000, Math.min(idleMillis, retainMillis) / 4))
  const sweep = Effect.suspend(() => {
    const now = clock.unsafeCurrentTimeMillis()
    const idle: Array<PtyProcess.PtyProcess> = []
    for (const [id, session] of sessions) {
      if (session.ended !== undefined) {
        if (now - session.endedAt >= retainMillis) sessions.delete(id)
      } else if (session.killing === undefined && now - session.lastActivityAt >= idleMillis) {
        idle.push(session)
      }
    }
    return Effect.forEach(idle, close, { discard: true })
  })
  return Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(Duration.millis(reapMillis)), sweep)))
}

/** Kills every live session and waits (at most the grace and a second) for them to end. */
const killAll = (sessions: Map<string, PtyProcess.PtyProcess>, grace: Duration.DurationInput) =>
  Effect.gen(function* () {
    const live = [...sessions.values()].filter((s) => s.ended === undefined)
    for (const session of live) {
      session.killing ??= "closed"
      yield* Effect.forkDaemon(processTree.killSession(session.pid, grace))
    }
    yield* Effect.forEach(live, (session) => Deferred.await(session.exit), {
      discard: true,
      concurrency: "unbounded"
    }).pipe(Effect.timeout(Duration.sum(grace, Duration.seconds(1))), Effect.ignore)
  })

const info = (session: PtyProcess.PtyProcess): PtySessionInfo => ({
  sessionId: session.id,
  command: session.command,
  cols: session.cols,
  rows: session.rows,
  createdAt: session.createdAt,
  lastActivityAt: session.lastActivityAt,
  outputOffset: session.ring.total,
  owner: session.owner
})

/** Finds a session by id: any known one (`find`), or only one still running (`findLive`). */
const lookup = (sessions: Map<string, PtyProcess.PtyProcess>) => {
  const find = (id: string) =>
    Effect.suspend(() => {
      const session = sessions.get(id)
      return session === undefined
        ? Effect.fail(new PtySessionError({ reason: "NotFound", sessionId: id, detail: `no session ${id}` }))
        : Effect.succeed(session)
    })
  const findLive = (id: string) =>
    Effect.flatMap(find(id), (session) =>
      session.ended === undefined
        ? Effect.succeed(session)
        : Effect.fail(new PtySessionError({ reason: "Ended", sessionId: id, detail: `session ${id} has ended` }))
    )
  return { find, findLive }
}

/** Writes input to the PTY and publishes who typed it (for the audit log; no log line per keystroke). */
const writeInput = (
  session: PtyProcess.PtyProcess,
  data: Uint8Array,
  principal: string,
  clock: Clock.Clock,
  inputs: PubSub.PubSub<InputEvent>
): Effect.Effect<void> => {
  if (data.length === 0) return Effect.void
  const at = clock.unsafeCurrentTimeMillis()
  session.lastActivityAt = at
  PtyProcess.write(session, data)
  return Effect.asVoid(PubSub.publish(inputs, { sessionId: session.id, principal, bytes: data.length, at }))
}
