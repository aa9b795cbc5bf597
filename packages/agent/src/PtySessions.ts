/**
 * The agent's interactive (PTY) sessions. One service for the whole daemon process: sessions OUTLIVE relay
 * connections (the daemon reconnects, the shells keep running), so the engine of each connection only attaches
 * output pumps to them (`output`) and forwards input, resizes and signals by session id.
 *
 * Each session is a node-pty process running the shell as a login shell (`<shell> -l`), or `PtySpec.command` when
 * given, in the home directory, with `TERM` from the spec (default `xterm-256color`) and the spec's size (default
 * 80×24). Its output goes into a ring of the last `ringBytes` (1 MiB) bytes, addressed by absolute offsets in the
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
 */
import type { PtySessionInfo, PtySpec } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as NodePty from "@lydell/node-pty"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { OutputRing } from "./internal/outputRing.js"
import * as processTree from "./internal/processTree.js"

/** Bytes of recent output each session keeps for replay. */
export const DEFAULT_RING_BYTES = 1024 * 1024

/** How long a session may go without input or output before it is closed. */
export const DEFAULT_IDLE_TIMEOUT = Duration.hours(12)

/** The largest `PtyOutput.data` that `output` yields. */
export const MAX_READ = 64 * 1024

/** Used when `PtySpec.term` is empty. */
export const DEFAULT_TERM = "xterm-256color"

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
}

/** Builds the service; closing the scope kills every live session (reason `"closed"`) and waits for them. */
export const make = (options: Options = {}): Effect.Effect<PtySessions["Type"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const ringBytes = options.ringBytes ?? DEFAULT_RING_BYTES
    const idleMillis = Duration.toMillis(options.idleTimeout ?? DEFAULT_IDLE_TIMEOUT)
    const retainMillis = Duration.toMillis(options.retainExited ?? Duration.minutes(1))
    const grace = options.killGrace ?? Duration.seconds(2)
    const shell = options.shell ?? defaultShell()
    const reapMillis =
      options.reapInterval !== undefined
        ? Duration.toMillis(options.reapInterval)
        : Math.max(10, Math.min(60_000, Math.min(idleMillis, retainMillis) / 4))
    const sessions = new Map<string, Session>()
    const inputs = yield* PubSub.unbounded<InputEvent>()

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

    /** Starts killing the tree (once); the kill runs in the service's scope. */
    const kill = (session: Session, reason: ExitReason): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (session.ended !== undefined || session.killing !== undefined) return Effect.void
        session.killing = reason
        return Effect.asVoid(
          Effect.forkIn(
            Effect.zipRight(
              processTree.killSession(session.pid, grace),
              Effect.sync(() => {
                // Members that escaped the session (setsid) may hold the terminal; node-pty gives up on the socket
                // 200 ms after the shell's exit anyway. Make sure the shell itself is gone.
                if (session.ended === undefined) processTree.signalGroup(session.pid, "SIGKILL")
              })
            ),
            scope
          )
        )
      })

    const open = (id: string, spec: PtySpec, owner: string) =>
      Effect.gen(function* () {
        if (sessions.has(id))
          return yield* new PtySessionError({
            reason: "AlreadyExists",
            sessionId: id,
            detail: `session ${id} is already open`
          })
        const argv = spec.command.length > 0 ? spec.command : [shell, "-l"]
        const file = yield* resolveExecutable(id, argv[0] ?? "")
        const cols = validSize(spec.cols) ? spec.cols : 80
        const rows = validSize(spec.rows) ? spec.rows : 24
        const term = spec.term !== "" ? spec.term : DEFAULT_TERM
        const cwd = homeDirectory()
        const session = yield* Effect.try({
          try: () => {
            const child = NodePty.spawn(file, argv.slice(1), {
              name: term,
              cols,
              rows,
              cwd,
              env: childEnv(term),
              encoding: null
            })
            return start(id, child, { command: argv.join(" "), owner, cols, rows, ringBytes })
          },
          catch: (error) =>
            new PtySessionError({
              reason: "SpawnFailed",
              sessionId: id,
              detail: `cannot start ${file}: ${error instanceof Error ? error.message : String(error)}`
            })
        })
        sessions.set(id, session)
        yield* Effect.logDebug("pty session opened").pipe(
          Effect.annotateLogs({ session_id: id, owner, command: session.command, pid: session.pid })
        )
        return info(session)
      })

    const write = (id: string, data: Uint8Array, principal: string) =>
      Effect.flatMap(findLive(id), (session) => {
        if (data.length === 0) return Effect.void
        const at = Date.now()
        session.lastActivityAt = at
        // With `encoding: null` node-pty writes Buffers as they are.
        session.child.write(Buffer.from(data.buffer, data.byteOffset, data.length) as unknown as string)
        // Attribution goes to `inputs` (the audit hook); no per-keystroke log line, which cost more than the write.
        return PubSub.publish(inputs, { sessionId: id, principal, bytes: data.length, at })
      })

    const resize = (id: string, cols: number, rows: number) =>
      Effect.flatMap(findLive(id), (session) =>
        Effect.sync(() => {
          if (!validSize(cols) || !validSize(rows)) return
          try {
            session.child.resize(cols, rows)
            session.cols = cols
            session.rows = rows
          } catch {
            // the terminal is going away
          }
        })
      )

    const signal = (id: string, name: string) =>
      Effect.flatMap(findLive(id), (session) => {
        const sig = processTree.normalizeSignal(name)
        if (sig === undefined) return Effect.logWarning(`ignoring unknown signal ${JSON.stringify(name)}`)
        return Effect.sync(() => {
          const group = processTree.foregroundGroup(session.pid) ?? session.pid
          if (!processTree.signalGroup(group, sig)) processTree.signalGroup(session.pid, sig)
        })
      })

    const close = (id: string) =>
      Effect.flatMap(find(id), (session) => Effect.zipRight(kill(session, "closed"), Deferred.await(session.exit)))

    const output = (id: string, fromOffset: number): Stream.Stream<PtyOutput, PtySessionError> =>
      Stream.unwrap(
        Effect.map(find(id), (session) =>
          Stream.unfoldEffect(Math.min(Math.max(0, fromOffset), session.ring.total), (cursor) =>
            nextOutput(session, cursor)
          )
        )
      )

    // Idle sessions are closed; ended ones are forgotten after the retention.
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Effect.sleep(Duration.millis(reapMillis)),
          Effect.suspend(() => {
            const now = Date.now()
            const idle: Array<Session> = []
            for (const [id, session] of sessions) {
              if (session.ended !== undefined) {
                if (now - session.endedAt >= retainMillis) sessions.delete(id)
              } else if (session.killing === undefined && now - session.lastActivityAt >= idleMillis) {
                idle.push(session)
              }
            }
            return Effect.forEach(
              idle,
              (session) =>
                Effect.zipRight(
                  Effect.logInfo("closing idle pty session").pipe(Effect.annotateLogs("session_id", session.id)),
                  kill(session, "idle")
                ),
              { discard: true }
            )
          })
        )
      )
    )

    yield* Effect.addFinalizer(() =>
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
    )

    return PtySessions.of({
      open,
      write,
      resize,
      signal,
      close,
      list: Effect.sync(() => [...sessions.values()].filter((s) => s.ended === undefined).map(info)),
      output,
      exited: (id) => Effect.flatMap(find(id), (session) => Deferred.await(session.exit)),
      inputs: Stream.fromPubSub(inputs)
    })
  })

/** The service for the whole daemon (see {@link make}). */
export const layer = (options: Options = {}): Layer.Layer<PtySessions> => Layer.scoped(PtySessions, make(options))

/** The shell a session without `command` runs: `$SHELL`, else the user's login shell, else `/bin/sh`. */
export const defaultShell = (): string => {
  const fromEnv = process.env.SHELL
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  try {
    const login = os.userInfo().shell
    if (login !== null && login !== "") return login
  } catch {
    // no passwd entry
  }
  return "/bin/sh"
}

interface Session {
  readonly id: string
  readonly child: NodePty.IPty
  readonly pid: number
  readonly command: string
  readonly owner: string
  readonly createdAt: number
  lastActivityAt: number
  cols: number
  rows: number
  readonly ring: OutputRing
  /** Readers waiting for output past the end of the ring (or for the end). */
  readonly waiters: Set<() => void>
  readonly exit: Deferred.Deferred<PtyExit>
  ended: PtyExit | undefined
  endedAt: number
  /** Set once a kill was started: the reason the exit will carry. */
  killing: ExitReason | undefined
}

const start = (
  id: string,
  child: NodePty.IPty,
  meta: {
    readonly command: string
    readonly owner: string
    readonly cols: number
    readonly rows: number
    readonly ringBytes: number
  }
): Session => {
  const now = Date.now()
  const session: Session = {
    id,
    child,
    pid: child.pid,
    command: meta.command,
    owner: meta.owner,
    createdAt: now,
    lastActivityAt: now,
    cols: meta.cols,
    rows: meta.rows,
    ring: new OutputRing(meta.ringBytes),
    waiters: new Set(),
    exit: Deferred.unsafeMake<PtyExit>(FiberId.none),
    ended: undefined,
    endedAt: 0,
    killing: undefined
  }
  const wake = () => {
    const waiters = [...session.waiters]
    session.waiters.clear()
    for (const waiter of waiters) waiter()
  }
  child.onData((data: string | Buffer) => {
    if (data.length === 0) return
    session.ring.append(typeof data === "string" ? Buffer.from(data, "utf8") : data)
    session.lastActivityAt = Date.now()
    wake()
  })
  // node-pty reports the exit once the terminal's socket closed, i.e. after the last output.
  child.onExit(({ exitCode, signal }) => {
    if (session.ended !== undefined) return
    const name = signal !== undefined && signal > 0 ? signalName(signal) : undefined
    const info: PtyExit = {
      exitCode: name !== undefined ? 128 + signal! : exitCode,
      ...(name !== undefined ? { signal: name } : {}),
      reason: session.killing ?? "exit",
      durationMs: Date.now() - session.createdAt
    }
    session.ended = info
    session.endedAt = Date.now()
    Deferred.unsafeDone(session.exit, Effect.succeed(info))
    wake()
  })
  return session
}

/** The next piece of output at `cursor` (clamped to the ring), waiting for it; none once the session ended. */
const nextOutput = (session: Session, cursor: number): Effect.Effect<Option.Option<readonly [PtyOutput, number]>> =>
  Effect.async((resume) => {
    const attempt = () => {
      const ring = session.ring
      if (ring.total > Math.max(cursor, ring.oldest)) {
        const piece = ring.read(cursor, MAX_READ)
        return resume(Effect.succeed(Option.some([piece, piece.offset + piece.data.length] as const)))
      }
      if (session.ended !== undefined) return resume(Effect.succeed(Option.none()))
      session.waiters.add(attempt)
    }
    attempt()
    return Effect.sync(() => {
      session.waiters.delete(attempt)
    })
  })

const info = (session: Session): PtySessionInfo => ({
  sessionId: session.id,
  command: session.command,
  cols: session.cols,
  rows: session.rows,
  createdAt: session.createdAt,
  lastActivityAt: session.lastActivityAt,
  outputOffset: session.ring.total,
  owner: session.owner
})

const validSize = (n: number): boolean => Number.isInteger(n) && n > 0 && n <= 10_000

const signalName = (n: number): string | undefined => {
  for (const [name, number] of Object.entries(os.constants.signals))
    if (number === n) return processTree.shortName(name)
  return undefined
}

const homeDirectory = (): string => {
  const home = os.homedir()
  return home !== "" && fs.existsSync(home) ? home : "/"
}

/** The agent's environment for the shell, minus what describes the agent's own terminal. */
const childEnv = (term: string): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value
  for (const key of ["TMUX", "TMUX_PANE", "STY", "WINDOW", "WINDOWID", "TERMCAP", "COLUMNS", "LINES", "COLORTERM"])
    delete env[key]
  env.TERM = term
  return env
}

/**
 * The file to run for `file` (looked up on `PATH` unless it holds a `/`). node-pty cannot tell a missing program
 * from one that exited 1, so the check happens before the spawn.
 */
const resolveExecutable = (id: string, file: string): Effect.Effect<string, PtySessionError> =>
  Effect.suspend(() => {
    const notFound = () =>
      Effect.fail(
        new PtySessionError({
          reason: "CommandNotFound",
          sessionId: id,
          detail: `command not found: ${file === "" ? "(empty command)" : file}`
        })
      )
    if (file === "") return notFound()
    const candidates = file.includes("/")
      ? [file]
      : (process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin")
          .split(path.delimiter)
          .map((dir) => path.join(dir || ".", file))
    let denied = false
    for (const candidate of candidates) {
      try {
        if (!fs.statSync(candidate).isFile()) continue
      } catch {
        continue
      }
      try {
        fs.accessSync(candidate, fs.constants.X_OK)
        return Effect.succeed(candidate)
      } catch {
        denied = true
      }
    }
    return denied
      ? Effect.fail(new PtySessionError({ reason: "SpawnFailed", sessionId: id, detail: `permission denied: ${file}` }))
      : notFound()
  })
