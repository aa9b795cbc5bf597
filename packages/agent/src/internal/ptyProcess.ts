/**
 * The process side of a PTY session: a node-pty child running the shell (or the spec's command) in the user's home
 * directory, its output kept in a scrollback ring, its exit turned into a `PtyExit`, and the signals and kills that
 * reach its whole process tree. `PtySessions` keeps the registry, timeouts and readers on top of this.
 */
import type { PtySpec } from "@cmdop/domain/AgentLink"
import * as NodePty from "@lydell/node-pty"
import type * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { ExitReason, PtyExit, PtyOutput } from "../PtySessions.js"
import * as processTree from "./processTree.js"
import { ScrollbackRing } from "./scrollbackRing.js"
import { withoutAgentSecrets } from "./sessionEnv.js"

/** The largest `PtyOutput.data` that one read yields. */
export const MAX_READ = 64 * 1024

/** Used when `PtySpec.term` is empty. */
export const DEFAULT_TERM = "xterm-256color"

/** Why a PTY could not be started: the command is missing (report as 127), or anything else (126). */
export class PtySpawnError extends Data.TaggedError("PtySpawnError")<{
  readonly reason: "CommandNotFound" | "SpawnFailed"
  readonly detail: string
}> {}

/** One running (or ended) PTY process and what the service tracks about it. */
export interface PtyProcess {
  readonly id: string
  readonly child: NodePty.IPty
  readonly pid: number
  readonly command: string
  readonly owner: string
  readonly createdAt: number
  lastActivityAt: number
  cols: number
  rows: number
  readonly ring: ScrollbackRing
  /** Readers waiting for output past the end of the ring (or for the end). */
  readonly waiters: Set<() => void>
  readonly exit: Deferred.Deferred<PtyExit>
  ended: PtyExit | undefined
  endedAt: number
  /** Set once a kill was started: the reason the exit will carry. */
  killing: ExitReason | undefined
}

/** Starts the PTY for `spec` (`[shell, "-l"]` without a command); times come from `clock`. */
export const spawn = (
  id: string,
  spec: PtySpec,
  options: { readonly shell: string; readonly owner: string; readonly ringBytes: number; readonly clock: Clock.Clock }
): Effect.Effect<PtyProcess, PtySpawnError> =>
  Effect.gen(function* () {
    const argv = spec.command.length > 0 ? spec.command : [options.shell, "-l"]
    const file = yield* resolveExecutable(argv[0] ?? "")
    const cols = validSize(spec.cols) ? spec.cols : 80
    const rows = validSize(spec.rows) ? spec.rows : 24
    const term = spec.term !== "" ? spec.term : DEFAULT_TERM
    return yield* Effect.try({
      try: () => {
        const child = NodePty.spawn(file, argv.slice(1), {
          name: term,
          cols,
          rows,
          cwd: homeDirectory(),
          env: childEnv(term),
          encoding: null
        })
        return track(id, child, { ...options, command: argv.join(" "), cols, rows })
      },
      catch: (error) =>
        new PtySpawnError({
          reason: "SpawnFailed",
          detail: `cannot start ${file}: ${error instanceof Error ? error.message : String(error)}`
        })
    })
  })

/** The session record for a freshly spawned child, wired to its output and exit. */
const track = (
  id: string,
  child: NodePty.IPty,
  meta: {
    readonly command: string
    readonly owner: string
    readonly cols: number
    readonly rows: number
    readonly ringBytes: number
    readonly clock: Clock.Clock
  }
): PtyProcess => {
  const now = () => meta.clock.unsafeCurrentTimeMillis()
  const createdAt = now()
  const session: PtyProcess = {
    id,
    child,
    pid: child.pid,
    command: meta.command,
    owner: meta.owner,
    createdAt,
    lastActivityAt: createdAt,
    cols: meta.cols,
    rows: meta.rows,
    ring: new ScrollbackRing(meta.ringBytes),
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
    session.lastActivityAt = now()
    wake()
  })
  // node-pty reports the exit once the terminal's socket closed, i.e. after the last output. Our patch of it keeps
  // the terminal's other end open until the shell exits and reads what is left then (the kernel could otherwise end
  // the master's reads before the shell's last output was read), and again before it gives up on the socket.
  child.onExit(({ exitCode, signal }) => {
    if (session.ended !== undefined) return
    const name = signal !== undefined && signal > 0 ? signalName(signal) : undefined
    const endedAt = now()
    const info: PtyExit = {
      exitCode: name !== undefined ? 128 + signal! : exitCode,
      ...(name !== undefined ? { signal: name } : {}),
      reason: session.killing ?? "exit",
      durationMs: endedAt - session.createdAt
    }
    session.ended = info
    session.endedAt = endedAt
    Deferred.unsafeDone(session.exit, Effect.succeed(info))
    wake()
  })
  return session
}

/** The next piece of output at `cursor` (clamped to the ring), waiting for it; none once the session ended. */
export const nextOutput = (
  session: PtyProcess,
  cursor: number
): Effect.Effect<Option.Option<readonly [PtyOutput, number]>> =>
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

/** Writes input to the terminal. */
export const write = (session: PtyProcess, data: Uint8Array): void => {
  // With `encoding: null` node-pty writes Buffers as they are.
  session.child.write(Buffer.from(data.buffer, data.byteOffset, data.length) as unknown as string)
}

/** Resizes the terminal; sizes outside 1…10000 are ignored. */
export const resize = (session: PtyProcess, cols: number, rows: number): void => {
  if (!validSize(cols) || !validSize(rows)) return
  try {
    session.child.resize(cols, rows)
    session.cols = cols
    session.rows = rows
  } catch {
    // the terminal is going away
  }
}

/** Signals the terminal's foreground process group, as the terminal driver does (falls back to the shell's). */
export const signalForeground = (session: PtyProcess, signal: NodeJS.Signals): void => {
  const group = processTree.foregroundGroup(session.pid) ?? session.pid
  if (!processTree.signalGroup(group, signal)) processTree.signalGroup(session.pid, signal)
}

/** Kills the session's whole process tree (SIGHUP + SIGTERM, SIGKILL after `grace`), and the shell for sure. */
export const killTree = (session: PtyProcess, grace: Duration.DurationInput): Effect.Effect<void> =>
  Effect.zipRight(
    processTree.killSession(session.pid, grace),
    Effect.sync(() => {
      // Members that escaped the session (setsid) may hold the terminal; node-pty gives up on the socket 200 ms
      // after the shell's exit anyway. Make sure the shell itself is gone.
      if (session.ended === undefined) processTree.signalGroup(session.pid, "SIGKILL")
    })
  )

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

/** The agent's environment for the shell, minus its secrets and what describes the agent's own terminal. */
const childEnv = (term: string): Record<string, string> => {
  const env = withoutAgentSecrets(process.env)
  for (const key of ["TMUX", "TMUX_PANE", "STY", "WINDOW", "WINDOWID", "TERMCAP", "COLUMNS", "LINES", "COLORTERM"])
    delete env[key]
  env.TERM = term
  return env
}

/**
 * The file to run for `file` (looked up on `PATH` unless it holds a `/`). node-pty cannot tell a missing program
 * from one that exited 1, so the check happens before the spawn.
 */
const resolveExecutable = (file: string): Effect.Effect<string, PtySpawnError> =>
  Effect.suspend(() => {
    const notFound = () =>
      Effect.fail(
        new PtySpawnError({
          reason: "CommandNotFound",
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
      ? Effect.fail(new PtySpawnError({ reason: "SpawnFailed", detail: `permission denied: ${file}` }))
      : notFound()
  })
