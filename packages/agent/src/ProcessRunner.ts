/**
 * The agent's exec engine: runs one command per exec session as a child process that leads its own process group,
 * streams its stdout/stderr with real backpressure (a consumer that stops pulling makes the child block in its pipe
 * writes; nothing is held beyond the kernel pipes and 256 KiB read ahead, `internal/pipeReader.ts`),
 * forwards stdin with backpressure, delivers signals to the whole group, and reports how the command ended.
 *
 * How the streams end:
 * - `output` ends once both stdout and stderr reached end-of-file, i.e. when the last process holding them (the
 *   command or a background job it left behind) closed them. A read error ends the pipe's part quietly.
 *   Interrupting the consumer destroys both pipes, so a child that keeps writing gets SIGPIPE.
 * - stdin is half-closed by `closeStdin` (the child reads end-of-file). Writes after that, or after the command
 *   exited, are dropped; a write the child refuses (EPIPE) is dropped too.
 * - closing the spawn's scope kills whatever is still alive in the group (SIGTERM, SIGKILL after the grace).
 */
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as ScopedAcquire from "@cmdop/grpc/ScopedAcquire"
import * as Stream from "effect/Stream"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as OutputHeadroom from "@cmdop/protocol/OutputHeadroom"
import * as os from "node:os"
import type { Readable, Writable } from "node:stream"
import * as PosixSpawn from "@cmdop/node/PosixSpawn"
import { commandLine } from "./internal/commandLine.js"
import { notStarted } from "./internal/notStarted.js"
import * as PipeReader from "./internal/pipeReader.js"
import * as processTree from "./internal/processTree.js"
import * as ProgramPath from "./internal/programPath.js"
import { withoutAgentSecrets } from "./internal/sessionEnv.js"
import * as WarmShells from "./internal/warmShells.js"

/** Output read ahead of the consumer, at most (stdout and stderr together): one full output message's worth. */
const OUTPUT_PENDING = 256 * 1024

/** What the relay asks the agent to run. */
export interface ExecSpec {
  /** `argv[0]` is the program, looked up on `PATH`; spawned directly, without a shell, unless `shell` is set. */
  readonly argv: ReadonlyArray<string>
  /** Run `argv` joined with spaces as `[$SHELL or /bin/sh, "-c", joined]` (`$SHELL` from the merged env). */
  readonly shell: boolean
  /** Kill the tree after this many milliseconds; 0 means no limit. */
  readonly timeoutMs: number
  /** Whether stdin will be written. When `false` the child gets an empty pipe, already at end-of-file. */
  readonly stdin: boolean
  /** Merged over the agent's own environment. */
  readonly env?: Record<string, string>
  /** Working directory; defaults to the agent user's home directory. */
  readonly cwd?: string
}

/** One read from one of the child's output pipes (at most a pipe buffer's worth, typically ≤ 64 KiB). */
export interface OutputChunk {
  readonly pipe: "stdout" | "stderr"
  readonly data: Uint8Array
}

/**
 * How the command ended.
 * - normal exit: `exitCode` is the process's exit status;
 * - killed by signal n: `exitCode` is `128 + n`, `signal` its name without `SIG` (`"TERM"`);
 * - timeout: the tree was killed, `timedOut` is true and `exitCode` is 124, as `timeout(1)` reports it (`signal` is
 *   set when the command died of the kill);
 * - could not start: `exitCode` 127 (not found) or 126 (not executable, or any other spawn failure), `error` says
 *   why (`"command not found: foo"`, `"permission denied: foo"`).
 */
export interface ExitInfo {
  readonly exitCode: number
  readonly signal?: string
  readonly timedOut: boolean
  readonly error?: string
  /** From spawn to the command's exit. */
  readonly durationMs: number
}

/** A command started by {@link ProcessRunner}. */
export interface RunningProcess {
  /** The command's pid, which is also its process group id; 0 when it could not be started. */
  readonly pid: number
  /**
   * stdout and stderr interleaved in arrival order. Pull-based: while nobody pulls, nothing is read and the child
   * blocks once the pipe is full. Ends when both pipes reach end-of-file (see the module header). Run it once.
   */
  readonly output: Stream.Stream<OutputChunk>
  /**
   * Writes to the child's stdin; completes once the bytes are handed to the pipe, waiting for it to drain when it is
   * full. A no-op after `closeStdin`, after the command exited, or when the child closed its stdin. Do not mutate
   * `data` afterwards: it may still be queued.
   */
  readonly write: (data: Uint8Array) => Effect.Effect<void>
  /** Half-closes stdin: the child reads end-of-file once the queued bytes are consumed. Idempotent. */
  readonly closeStdin: Effect.Effect<void>
  /** Delivers a signal (`"INT"`, `"TERM"`, `"HUP"`, `"KILL"`, …) to the whole group. Unknown names are logged. */
  readonly signal: (name: string) => Effect.Effect<void>
  /** Kills the whole group: SIGTERM, then SIGKILL if some member outlives the grace period (2 s by default). */
  readonly kill: Effect.Effect<void>
  /**
   * Resolves as soon as the command (the group leader) exited; it does not wait for `output` to be drained or for
   * background jobs the command left running. A session should drain `output` first, then await `exit`. While
   * nobody pulls `output`, a chatty command blocks and never exits unless it times out or is killed.
   */
  readonly exit: Effect.Effect<ExitInfo>
}

/** Starts exec-session commands. */
export class ProcessRunner extends Context.Tag("@cmdop/agent/ProcessRunner")<
  ProcessRunner,
  {
    /**
     * Starts `spec`. Never fails: a command that cannot start yields a process with empty output whose `exit`
     * carries the error. Closing the scope kills the group if any member is still alive.
     */
    readonly spawn: (spec: ExecSpec) => Effect.Effect<RunningProcess, never, Scope.Scope>
  }
>() {}

/** Tuning for {@link make}. */
export interface Options {
  /** How long a killed group gets between SIGTERM and SIGKILL. Default 2 seconds. */
  readonly killGrace?: Duration.DurationInput
  /**
   * {@link makeWarm}: how long the agent must start and end no command before the next warm shell is forked.
   * Default 100 ms (`internal/warmShells.ts` says why); shorter in tests, so that nearly every command runs warm.
   */
  readonly warmShellQuiet?: Duration.DurationInput
}

/** Builds the service; every command is forked from the agent when it is asked for (see {@link makeWarm}). */
export const make = (options: Options = {}): Effect.Effect<ProcessRunner["Type"]> =>
  Effect.sync(() => build(options, undefined, undefined))

/**
 * The agent's runner. A command is started with `posix_spawn` (`@cmdop/node/PosixSpawn`: no copy of the agent's page
 * tables) once its C functions are bound, which starts at the first command (koffi costs an agent that never runs
 * one 1.3 MiB); until then, and where the C library has none, from a warm shell kept ready
 * (`internal/warmShells.ts`: the fork happens between commands, not on an exec's way). Whatever neither can start
 * exactly as Node would is spawned the plain way. The shell waiting when the scope closes exits.
 */
export const makeWarm = (options: Options = {}): Effect.Effect<ProcessRunner["Type"], never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() =>
        WarmShells.make(
          () => withoutAgentSecrets(process.env),
          os.homedir(),
          options.warmShellQuiet === undefined ? undefined : Duration.toMillis(options.warmShellQuiet)
        )
      ),
      (shells) => Effect.sync(() => shells?.close())
    ),
    (shells) => {
      let spawner: PosixSpawn.Spawner | undefined
      let loading = false
      const direct = () => {
        if (!loading) {
          loading = true
          void PosixSpawn.load().then((loaded) => {
            spawner = loaded
            // No more forks ahead of need: every command is spawned directly from now on.
            if (loaded !== undefined) shells?.close()
          })
        }
        return spawner
      }
      return build(options, shells, direct)
    }
  )

/**
 * A runner that starts every command it can with `posix_spawn` (the others the plain way); it dies where the C
 * library has no `posix_spawn` to bind (not glibc ≥ 2.29 on Linux). For tests of that path.
 */
export const makeDirect = (options: Options = {}): Effect.Effect<ProcessRunner["Type"]> =>
  Effect.map(
    Effect.promise(() => PosixSpawn.load()),
    (spawner) => {
      if (spawner === undefined) throw new Error("posix_spawn cannot be bound here (Linux with glibc 2.29 or later)")
      return build(options, undefined, () => spawner)
    }
  )

const build = (
  options: Options,
  shells: WarmShells.WarmShells | undefined,
  direct: (() => PosixSpawn.Spawner | undefined) | undefined
): ProcessRunner["Type"] => {
  const grace = options.killGrace ?? Duration.seconds(2)
  return ProcessRunner.of({
    spawn: (spec) =>
      spawn(spec, grace, shells, direct).pipe(
        // No stack trace for the span: capturing one costs more than the rest of the span, on every exec.
        Effect.withSpan("ProcessRunner.spawn", {
          attributes: { argv0: spec.argv[0] ?? "" },
          captureStackTrace: false
        })
      )
  })
}

/** The process runner on the local machine (see {@link makeWarm}), with a 2 second kill grace. */
export const layer: Layer.Layer<ProcessRunner> = Layer.scoped(ProcessRunner, makeWarm())

/** What the runner needs of a started child: a `ChildProcess`, or a `PosixSpawn.PosixChild`. */
interface Child {
  readonly pid?: number | undefined
  readonly stdin: Writable | null
  readonly stdout: Readable | null
  readonly stderr: Readable | null
  on(event: "error", listener: (error: Error) => void): unknown
  once(event: "close", listener: () => void): unknown
  once(event: "exit", listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown
}

interface Started {
  readonly child: Child | undefined
  readonly pid: number
  readonly state: { exited: boolean; timedOut: boolean }
}

const spawn = (
  spec: ExecSpec,
  grace: Duration.DurationInput,
  shells: WarmShells.WarmShells | undefined,
  direct: (() => PosixSpawn.Spawner | undefined) | undefined
) =>
  Effect.gen(function* () {
    const exited = yield* Deferred.make<ExitInfo>()
    const clock = yield* Effect.clock
    const started = yield* ScopedAcquire.acquireRelease(
      Effect.sync(() => start(spec, exited, clock, shells, direct?.())),
      ({ child, pid }) =>
        Effect.suspend(() => (processTree.groupAlive(pid) ? processTree.killGroup(pid, grace) : Effect.void)).pipe(
          Effect.ensuring(Effect.sync(() => child && destroyStdio(child)))
        )
    )
    const { child, pid, state } = started
    if (child === undefined || pid === 0) {
      return notStarted(exited)
    }
    const kill = processTree.killGroup(pid, grace)
    if (spec.timeoutMs > 0) {
      // The deadline holds until the output closes, not only until the command exits: processes it left running
      // (`server &`) that keep its stdout open would hold the session open past it. At the deadline they are killed
      // with the tree; a command that had exited keeps its own status (not 124: it did not time out).
      const closed = yield* Deferred.make<void>()
      child.once("close", () => Deferred.unsafeDone(closed, Exit.void))
      yield* Deferred.await(closed).pipe(
        Effect.timeout(Duration.millis(spec.timeoutMs)),
        Effect.catchTag("TimeoutException", () =>
          Effect.suspend(() => {
            if (!state.exited) state.timedOut = true
            return kill
          })
        ),
        Effect.forkScoped
      )
    }
    const stdin = child.stdin!
    const exitedNow = Deferred.await(exited).pipe(Effect.asVoid)
    return {
      pid,
      output: PipeReader.read(
        [
          [child.stdout!, "stdout"],
          [child.stderr!, "stderr"]
        ],
        OUTPUT_PENDING,
        OUTPUT_PENDING,
        // Bulk output gathers in buffers the agent link can send without copying them again.
        OutputHeadroom.allocate
      ),
      write: (data) =>
        Effect.suspend(() => {
          if (data.length === 0 || state.exited || !stdin.writable) return Effect.void
          if (stdin.write(data)) return Effect.void
          return Effect.raceFirst(drained(stdin), exitedNow)
        }),
      closeStdin: Effect.sync(() => {
        if (stdin.writable) stdin.end()
      }),
      signal: (name) =>
        Effect.suspend(() => {
          const signal = processTree.normalizeSignal(name)
          if (signal === undefined) return Effect.logWarning(`ignoring unknown signal ${JSON.stringify(name)}`)
          return Effect.sync(() => void processTree.signalGroup(pid, signal))
        }),
      kill,
      exit: Deferred.await(exited)
    } satisfies RunningProcess
  })

/** Spawns the child and wires the callbacks that complete `exited`; never throws. */
const start = (
  spec: ExecSpec,
  exited: Deferred.Deferred<ExitInfo>,
  clock: Clock.Clock,
  shells: WarmShells.WarmShells | undefined,
  spawner: PosixSpawn.Spawner | undefined
): Started => {
  const startedAt = clock.unsafeCurrentTimeMillis()
  const state = { exited: false, timedOut: false }
  const finish = (info: Omit<ExitInfo, "durationMs">) => {
    state.exited = true
    Deferred.unsafeDone(exited, Effect.succeed({ ...info, durationMs: clock.unsafeCurrentTimeMillis() - startedAt }))
  }
  const cwd = spec.cwd ?? os.homedir()
  let child: Child | undefined = spawner === undefined ? undefined : startDirect(spawner, spec, cwd)
  child ??= shells?.take(spec, cwd)
  /** The program a plain spawn ran, for its failure's message (a warm shell's command has been found already). */
  let file = ""
  if (child === undefined) {
    const env = { ...withoutAgentSecrets(process.env), ...spec.env }
    const argv = commandLine(spec, env.SHELL)
    file = argv[0] ?? ""
    if (file === "") {
      finish({ exitCode: 127, timedOut: false, error: "command not found: (empty command)" })
      return { child: undefined, pid: 0, state }
    }
    try {
      child = ChildProcess.spawn(file, argv.slice(1), { cwd, env, detached: true, stdio: ["pipe", "pipe", "pipe"] })
    } catch (error) {
      finish({ timedOut: false, ...spawnFailure(error, file, cwd) })
      return { child: undefined, pid: 0, state }
    }
  }
  // Pipe errors (EPIPE on stdin, a failed read) surface through the operations; never as an unhandled 'error'.
  for (const stream of [child.stdin, child.stdout, child.stderr]) stream?.on("error", () => {})
  const pid = child.pid
  if (pid === undefined) {
    // ENOENT / EACCES and friends are reported asynchronously, as an 'error' event on the next tick.
    child.on("error", (error) => finish({ timedOut: false, ...spawnFailure(error, file, cwd) }))
    destroyStdio(child)
    return { child, pid: 0, state }
  }
  child.on("error", () => {})
  // Its pipes closed too: what it wrote and its Exit are on their way; the next warm shell's fork may come.
  child.once("close", () => shells?.ended())
  child.once("exit", (code, signal) => {
    if (state.timedOut) {
      finish({ exitCode: 124, timedOut: true, ...(signal ? { signal: processTree.shortName(signal) } : {}) })
    } else if (signal) {
      finish({
        exitCode: 128 + processTree.signalNumber(signal),
        signal: processTree.shortName(signal),
        timedOut: false
      })
    } else {
      finish({ exitCode: code ?? 0, timedOut: false })
    }
  })
  if (!spec.stdin) child.stdin?.end()
  return { child, pid, state }
}

/** `spec` started by `posix_spawn`, or `undefined` to start it another way (see `@cmdop/node/PosixSpawn`). */
const startDirect = (spawner: PosixSpawn.Spawner, spec: ExecSpec, cwd: string): Child | undefined => {
  const env = { ...withoutAgentSecrets(process.env), ...spec.env }
  const argv = commandLine(spec, env.SHELL)
  const file = argv[0]
  if (file === undefined || file === "") return undefined
  const program = ProgramPath.find(file, env.PATH, cwd)
  return program === undefined ? undefined : spawner.spawn(program, argv, env, cwd)
}

const spawnFailure = (error: unknown, file: string, cwd: string): { exitCode: number; error: string } => {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  if (code === "ENOENT" || code === "ENOTDIR") {
    return fs.existsSync(cwd)
      ? { exitCode: 127, error: `command not found: ${file}` }
      : { exitCode: 127, error: `no such directory: ${cwd}` }
  }
  if (code === "EACCES" || code === "EPERM") return { exitCode: 126, error: `permission denied: ${file}` }
  return { exitCode: 126, error: `cannot run ${file}: ${error instanceof Error ? error.message : String(error)}` }
}

/** Waits until the pipe can take more, or will never need to (closed, broken). */
const drained = (writable: Writable): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const off = () => {
      writable.off("drain", done)
      writable.off("close", done)
      writable.off("error", done)
    }
    const done = () => {
      off()
      resume(Effect.void)
    }
    writable.on("drain", done)
    writable.on("close", done)
    writable.on("error", done)
    return Effect.sync(off)
  })

const destroyStdio = (child: Child): void => {
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    if (stream && !stream.destroyed) stream.destroy()
  }
}
