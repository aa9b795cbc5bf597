/**
 * The in-memory twin of {@link ProcessRunner}: the same service, with commands run by a small deterministic
 * interpreter in this process instead of child processes. It is what the CLI's memory world and programs that
 * embed the command tree run exec sessions on: no process is started, time is the Effect `Clock` (so `sleep 30`
 * under a `TestClock` ends when the test adjusts it), and the answers match the live runner's for what it knows —
 * the contract suite (`test/ProcessRunnerContract.ts`) runs against both.
 *
 * What it knows: `echo`, `printf`, `true`, `false`, `cat`, `grep`, `sort`, `wc`, `sleep`, `env`, `pwd`, `yes` and
 * `sh` (with `bash`/`dash` as aliases) over a POSIX-shell subset with `exit N`, `exec` and `kill -SIG $$`
 * (`internal/memoryShell.ts`), a few read-only files ({@link Options.files}); programs of your own through
 * {@link Options.programs}. Any other name is "command not found" (exit 127), as on a machine without it.
 *
 * How it behaves like the live runner:
 * - output is pull-based: a program's write waits while the reader is behind (a few chunks are held), and stops
 *   the program with SIGPIPE (exit 141) when the reader goes away before the end;
 * - stdin is a bounded queue: `write` waits while the program does not read, and is released when it exits;
 * - a signal ends the program as if killed by it (`128 + n`), except those whose default action is to do nothing
 *   (WINCH, CHLD, CONT, …); programs cannot trap signals, so `kill` ends at once, without a grace period;
 * - a timeout ends it with SIGTERM and reports exit 124 with `timedOut`; closing the spawn's scope ends it too.
 * Pids count up from just above Linux's highest possible pid, so a stray `kill(2)` with one reaches no process.
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as path from "node:path"
import { notStarted } from "./internal/notStarted.js"
import * as processTree from "./internal/processTree.js"
import { baseName, builtins, type Io, type Program, Signalled } from "./internal/memoryPrograms.js"
import { IGNORED_BY_DEFAULT, shell } from "./internal/memoryShell.js"
import type { ExecSpec, ExitInfo, OutputChunk, RunningProcess } from "./ProcessRunner.js"
import { ProcessRunner } from "./ProcessRunner.js"

export type { Io, Program } from "./internal/memoryPrograms.js"
export { Signalled } from "./internal/memoryPrograms.js"

/** Tuning for {@link make}. */
export interface Options {
  /**
   * The environment every command starts from (the live runner's is the agent's own); `ExecSpec.env` is merged
   * over it. Default: `HOME`, `PATH`, `SHELL=/bin/sh`, `USER`, `LANG` with fixed values.
   */
  readonly env?: Readonly<Record<string, string>>
  /** Where commands start when the spec names no `cwd`. Default `/home/memory`. */
  readonly home?: string
  /** Programs beyond the built-in ones, by name; a name here replaces a built-in. */
  readonly programs?: Readonly<Record<string, Program>>
  /**
   * The machine's files, by absolute path, read-only (`cat`, `grep` and `sort` read them). Default: an
   * `/etc/passwd` with `root` and the `memory` user, and `/etc/hostname`.
   */
  readonly files?: Readonly<Record<string, string>>
}

const DEFAULT_FILES: Readonly<Record<string, string>> = {
  "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nmemory:x:1000:1000:memory:/home/memory:/bin/sh\n",
  "/etc/hostname": "memory\n"
}

/** One more than Linux's `PID_MAX_LIMIT` (2^22): no real process ever has these pids. */
const FIRST_PID = 4_194_305
/** At most this many bytes per output chunk, a pipe buffer's worth, as the live runner reads them. */
const MAX_CHUNK = 65_536
/** Chunks held between a program and its reader (and between a writer and the program's stdin). */
const HELD_CHUNKS = 16

const encoder = new TextEncoder()

/** Builds the service. */
export const make = (options: Options = {}): Effect.Effect<ProcessRunner["Type"]> =>
  Effect.sync(() => {
    const home = options.home ?? "/home/memory"
    const base = options.env ?? {
      HOME: home,
      PATH: "/usr/local/bin:/usr/bin:/bin",
      SHELL: "/bin/sh",
      USER: "memory",
      LANG: "C.UTF-8"
    }
    const programs: Record<string, Program> = { ...builtins, sh: shell, bash: shell, dash: shell, ...options.programs }
    const lookup = (file: string) => programs[baseName(file)]
    const files = options.files ?? DEFAULT_FILES
    let nextPid = FIRST_PID
    return ProcessRunner.of({
      spawn: (spec) =>
        Effect.suspend(() => spawn(spec, { home, base, lookup, files, pid: () => nextPid++ })).pipe(
          Effect.withSpan("ProcessRunnerMemory.spawn", { attributes: { argv0: spec.argv[0] ?? "" } })
        )
    })
  })

/** The in-memory runner with its defaults. */
export const layer: Layer.Layer<ProcessRunner> = Layer.effect(ProcessRunner, make())

interface Machine {
  readonly home: string
  readonly base: Readonly<Record<string, string>>
  readonly lookup: (file: string) => Program | undefined
  readonly files: Readonly<Record<string, string>>
  readonly pid: () => number
}

const spawn = (spec: ExecSpec, machine: Machine) =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    const startedAt = clock.unsafeCurrentTimeMillis()
    const exited = yield* Deferred.make<ExitInfo>()
    const finish = (info: Omit<ExitInfo, "durationMs">) =>
      Deferred.succeed(exited, { ...info, durationMs: clock.unsafeCurrentTimeMillis() - startedAt })
    const env = { ...machine.base, ...spec.env }
    const argv = spec.shell ? [env.SHELL || "/bin/sh", "-c", spec.argv.join(" ")] : spec.argv
    const file = argv[0]
    const program = file === undefined || file === "" ? undefined : machine.lookup(file)
    if (program === undefined) {
      yield* finish({ exitCode: 127, timedOut: false, error: `command not found: ${file || "(empty command)"}` })
      return notStarted(exited)
    }

    const pid = machine.pid()
    const cwd = spec.cwd ?? machine.home
    const output = yield* Mailbox.make<OutputChunk>({ capacity: HELD_CHUNKS, strategy: "suspend" })
    const input = yield* Mailbox.make<Uint8Array>({ capacity: HELD_CHUNKS, strategy: "suspend" })
    if (!spec.stdin) yield* input.end
    const state: State = { timedOut: false }
    const io: Io = {
      name: baseName(file!),
      args: argv.slice(1),
      env,
      cwd,
      pid,
      read: Effect.option(input.take),
      stdout: (data) => emit(output, "stdout", data),
      stderr: (data) => emit(output, "stderr", data),
      lookup: machine.lookup,
      file: (file) => machine.files[path.posix.resolve(cwd, file)]
    }
    const scope = yield* Effect.scope
    const fiber = yield* program(io).pipe(
      Effect.onExit((exit) => Effect.zipRight(finish(outcome(state, exit)), Effect.zipRight(output.end, input.end))),
      Effect.forkIn(scope)
    )
    const done = Deferred.isDone(exited)
    const deliver = (signal: NodeJS.Signals) =>
      Effect.flatMap(done, (isDone) => {
        if (isDone || IGNORED_BY_DEFAULT.has(signal)) return Effect.void
        state.signal ??= signal
        return Fiber.interruptFork(fiber)
      })
    if (spec.timeoutMs > 0) {
      yield* Deferred.await(exited).pipe(
        Effect.timeout(Duration.millis(spec.timeoutMs)),
        Effect.catchTag("TimeoutException", () =>
          Effect.flatMap(done, (isDone) => {
            if (isDone) return Effect.void
            state.timedOut = true
            return deliver("SIGTERM")
          })
        ),
        Effect.forkIn(scope)
      )
    }
    const exitedNow = Effect.asVoid(Deferred.await(exited))
    return {
      pid,
      // A reader that goes away before the end is a closed pipe: the program gets SIGPIPE, as a real one would.
      output: Mailbox.toStream(output).pipe(Stream.ensuring(deliver("SIGPIPE"))),
      write: (data) =>
        data.length === 0 ? Effect.void : Effect.raceFirst(Effect.asVoid(input.offer(data)), exitedNow),
      closeStdin: Effect.asVoid(input.end),
      signal: (name) => {
        const signal = processTree.normalizeSignal(name)
        if (signal === undefined) return Effect.logWarning(`ignoring unknown signal ${JSON.stringify(name)}`)
        return deliver(signal)
      },
      kill: Effect.zipRight(deliver("SIGTERM"), Fiber.await(fiber)).pipe(Effect.asVoid),
      exit: Deferred.await(exited)
    } satisfies RunningProcess
  })

/** The first signal delivered (what the process dies of when interrupted), and whether a timeout sent it. */
interface State {
  signal?: NodeJS.Signals
  timedOut: boolean
}

/** How a program's run ended, as the live runner reports a process's end. */
const outcome = (state: State, exit: Exit.Exit<number, Signalled>): Omit<ExitInfo, "durationMs"> => {
  if (state.timedOut) return { exitCode: 124, timedOut: true, signal: processTree.shortName(state.signal!) }
  if (Exit.isSuccess(exit)) return { exitCode: exit.value & 0xff, timedOut: false }
  // Signalled itself, or was interrupted by a delivered signal (or by its scope closing: SIGTERM); a defect in a
  // program is reported the way a crashing process is, as SIGABRT.
  const failure = Cause.failureOption(exit.cause)
  const signal = Option.isSome(failure)
    ? failure.value.signal
    : Cause.isInterruptedOnly(exit.cause)
      ? (state.signal ?? "SIGTERM")
      : "SIGABRT"
  return { exitCode: 128 + processTree.signalNumber(signal), signal: processTree.shortName(signal), timedOut: false }
}

/** Writes `data` in chunks of at most {@link MAX_CHUNK}, each waiting for room. */
const emit = (output: Mailbox.Mailbox<OutputChunk>, pipe: OutputChunk["pipe"], data: Uint8Array | string) => {
  const bytes = typeof data === "string" ? encoder.encode(data) : data
  const chunks: Array<OutputChunk> = []
  for (let offset = 0; offset < bytes.length; offset += MAX_CHUNK) {
    chunks.push({ pipe, data: bytes.slice(offset, offset + MAX_CHUNK) })
  }
  return Effect.forEach(chunks, (chunk) => output.offer(chunk), { discard: true })
}
