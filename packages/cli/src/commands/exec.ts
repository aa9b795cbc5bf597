/**
 * `cmdop connect exec [flags] <host> [--] <cmd…>`: one command on one machine, no PTY. The command is every word
 * after the host, untouched (`RemoteArgv` takes it out of argv before parsing). stdout and
 * stderr stream separately as they arrive; stdin is forwarded when it is not a terminal; the remote exit code is
 * passed through (a signal n becomes 128+n), a timeout exits 124, the CLI's own failures 255.
 */
import * as PullStream from "@cmdop/grpc/PullStream"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Machine from "@cmdop/domain/Machine"
import type { ExecEvent, RelayClient } from "@cmdop/domain/RelayClient"
import type * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { CliError, ExitCode, ExitWith } from "../CliError.js"
import { globals } from "../ConnectCommand.js"
import * as Duration from "../Duration.js"
import * as GlobalOptions from "../GlobalOptions.js"
import * as Output from "../Output.js"
import * as RemoteArgv from "../RemoteArgv.js"
import { type OutputPiece, Stdio } from "../Stdio.js"
import * as UnknownFlag from "../UnknownFlag.js"
import * as picker from "./picker.js"

const decoder = () => {
  const d = new TextDecoder()
  return (chunk: Uint8Array, done = false) => d.decode(chunk, { stream: !done })
}

/**
 * The machine `host` names by the strict rule (`Machine.resolve` with `loose: false`: id, exact name, prefix), as the
 * id to run on: exec never runs on a machine picked by a part of its name, which the user may have meant for
 * another. When only a part matches one machine, a terminal asks (default no); otherwise it says which name to use.
 * When nothing matches, `host` goes to the relay as typed, whose refusal is the one to show.
 */
const exactEnough = (g: GlobalOptions.Globals, client: RelayClient["Type"], host: string) =>
  Effect.gen(function* () {
    const { machines } = yield* client.listMachines()
    const strict = yield* Effect.either(Machine.resolve(machines, host, { loose: false }))
    if (strict._tag === "Right") return strict.right.id
    if (strict.left.reason !== "NotFound") return yield* strict.left
    const found = yield* Effect.either(Machine.resolve(machines, host))
    // No machine by any rule: the relay's own answer is the one to give (a guest's says which machine its link
    // is for; an owner's lists the candidates).
    if (found._tag === "Left") return host
    const loose = found.right
    const stdio = yield* Stdio
    const question = `"${host}" is only part of ${loose.hostname}'s name (${loose.id}); run the command there?`
    if (g.interactive && stdio.interactive && (yield* confirm(question))) return loose.id
    return yield* new CliError({
      message: `machine "${host}" matches ${loose.hostname} only by a substring of its name; exec needs the name, a prefix of it, or the id: cmdop connect exec ${loose.hostname} -- …`
    })
  })

/** A terminal's answer to `question` (Enter or Ctrl-C: no). */
const confirm = (question: string) =>
  Effect.catchAll(picker.confirmPrompt(question, { defaultYes: false }), () => Effect.succeed(false))

/** How long a Ctrl-C waits for the call to take more of a backed-up stdin before it gives up on the command. */
const STUCK_BEHIND_STDIN = "1 second"

/**
 * `stdin` as the call reads it, and whether it is backed up: the call has taken no more of it since `mark` and is
 * not asking for more, while it has not ended. A signal goes on the call after the stdin already given to it, and
 * the relay reads the call's messages in order, as the remote command consumes its stdin: behind stdin the command
 * does not read (`yes | cmdop connect exec vm -- sleep 100`) every buffer between here and the command is full, and
 * a signal would wait for ever.
 */
const watchStdin = (stdin: Stream.Stream<Uint8Array> | undefined) => {
  if (stdin === undefined) return { stdin, mark: () => 0, stuckSince: (_mark: number) => false }
  let asking = false
  let ended = false
  let taken = 0
  const settle = (exit: Exit.Exit<unknown, unknown>) =>
    Effect.sync(() => {
      asking = false
      if (Exit.isSuccess(exit)) taken++
      else ended = true
    })
  return {
    stdin: PullStream.mapPull(stdin, (pull) =>
      Effect.suspend(() => {
        asking = true
        return Effect.onExit(pull, settle)
      })
    ),
    mark: () => taken,
    stuckSince: (mark: number) => !asking && !ended && taken === mark
  }
}

/**
 * Ctrl-C while the command runs: the first press sends SIGINT to the remote command (as a terminal does to its
 * foreground job), so its exit status says it was interrupted; a second press gives up on it: the call ends, which
 * kills its process tree on the machine, and the CLI exits 130. So does the first press when the signal is stuck
 * behind stdin the command does not read (`watchStdin`) for `STUCK_BEHIND_STDIN`. SIGTERM (a CI job cancelled,
 * `kill`) gives up at once the same way and exits 143, the status of a process killed by it (not 0, as if the
 * command had succeeded). While the machine's gate still holds the command for approval, that first SIGINT withdraws
 * the request on the machine, which answers with exit 130 and the line to print (nothing ran).
 */
const forwardCtrlC = (watched: ReturnType<typeof watchStdin>) =>
  Effect.gen(function* () {
    const stdio = yield* Stdio
    const presses = yield* stdio.interrupts
    const terminated = yield* stdio.terminated
    const signals = yield* Queue.unbounded<string>()
    const giveUp = yield* Deferred.make<string>()
    const stuckBehindStdin = Effect.suspend(() => {
      const mark = watched.mark()
      return Effect.zipRight(
        Effect.sleep(STUCK_BEHIND_STDIN),
        Effect.suspend(() =>
          watched.stuckSince(mark)
            ? Deferred.succeed(
                giveUp,
                "cmdop: Ctrl-C could not reach the remote command behind the input it has not read (its stdin is backed up); the remote command is killed"
              )
            : Effect.void
        )
      )
    })
    yield* presses.pipe(
      Stream.zipWithIndex,
      Stream.runForEach(([, n]) =>
        n === 0
          ? Effect.zipRight(Queue.offer(signals, "INT"), Effect.asVoid(Effect.forkScoped(stuckBehindStdin)))
          : Effect.asVoid(Deferred.succeed(giveUp, "cmdop: interrupted twice; the remote command is killed"))
      ),
      Effect.forkScoped
    )
    return {
      signals: Stream.fromQueue(signals),
      abandoned: Effect.raceFirst(
        Effect.flatMap(Deferred.await(giveUp), (why) =>
          Effect.zipRight(Output.notice(why), Effect.fail(new ExitWith({ code: 130 })))
        ),
        Effect.zipRight(
          terminated,
          Effect.zipRight(
            Output.notice("cmdop: terminated (SIGTERM); the remote command is killed"),
            Effect.fail(new ExitWith({ code: 143 }))
          )
        )
      )
    }
  })

export const execCommand = Command.make(
  "exec",
  {
    ...GlobalOptions.options,
    timeout: Options.text("timeout").pipe(
      Options.withDescription("kill the remote command after this long (90s, 5m, 1h); exit code 124"),
      Options.withDefault("30s")
    ),
    shell: Options.boolean("shell").pipe(Options.withDescription("run the command through the remote user's shell")),
    host: Args.text({ name: "host" }).pipe(
      Args.withDescription("machine: exact hostname or name, a prefix of one (2+), or its id or a prefix of it (4+)")
    )
  },
  ({ host, shell, timeout, ...own }) =>
    Effect.flatMap(globals(own), (g) =>
      run(g, host, shell, timeout).pipe(Effect.catchAll((error) => jsonFailure(g, error)))
    )
).pipe(Command.withDescription("run one command on a machine and pass its output and exit code through"))

/**
 * With `--json`, a failure of the CLI itself (unknown machine, offline, relay unreachable) is still one JSON
 * document on stdout, with `error` saying what failed; the line on stderr and the exit code stay as without it.
 */
const jsonFailure = <E>(g: GlobalOptions.Globals, error: E) =>
  Effect.gen(function* () {
    if (!g.json || error instanceof ExitWith || (error instanceof CliError && error.exitCode === ExitCode.usage))
      return yield* Effect.fail(error)
    const message =
      typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)
    const remote = yield* FiberRef.get(RemoteArgv.current)
    yield* Output.json({
      machine_id: null,
      hostname: null,
      command: remote.argv,
      exit_code: ExitCode.failure,
      stdout: "",
      stderr: "",
      duration_ms: 0,
      timed_out: false,
      error: message,
      hint: Output.failure(message, ExitCode.failure).hint
    })
    return yield* Effect.fail(error)
  })

type Exit = Extract<ExecEvent, { _tag: "Exit" }>

/** What the events of one exec said: the machine it ran on, and its exit. */
interface Seen {
  machine?: { readonly id: string; readonly hostname: string }
  exit?: Exit
}

/**
 * Where output goes: straight to stdout and stderr as it arrives, or (with --json) kept for the one document. One
 * step per chunk of events: its output is written in a plain loop and waited on once (`Stdio.output`).
 */
const eventSink = (json: boolean, stdio: Stdio["Type"]) => {
  const out: Array<string> = []
  const err: Array<string> = []
  const decodeOut = decoder()
  const decodeErr = decoder()
  const seen: Seen = {}
  const step = (events: Chunk.Chunk<ExecEvent>): Effect.Effect<void> => {
    const pieces: Array<OutputPiece> = []
    for (const event of events) {
      switch (event._tag) {
        case "Started":
          seen.machine = { id: event.machine.id, hostname: event.machine.hostname }
          break
        case "Stdout":
          if (json) out.push(decodeOut(event.data))
          else pieces.push({ stderr: false, data: event.data })
          break
        case "Stderr":
          if (json) err.push(decodeErr(event.data))
          else pieces.push({ stderr: true, data: event.data })
          break
        case "Exit":
          seen.exit = event
      }
    }
    return pieces.length === 0 ? Effect.void : stdio.output(pieces)
  }
  const collected = () => {
    out.push(decodeOut(new Uint8Array(0), true))
    err.push(decodeErr(new Uint8Array(0), true))
    return { stdout: out.join(""), stderr: err.join("") }
  }
  return { step, seen: (): Seen => seen, collected }
}

/** The longest `--timeout`: what the protocol's `uint32 timeout_ms` holds (about 49 days). */
const MAX_TIMEOUT_MS = 0xffff_ffff

const run = (g: GlobalOptions.Globals, host: string, shell: boolean, timeout: string) =>
  Effect.gen(function* () {
    const remote = yield* FiberRef.get(RemoteArgv.current)
    const command = remote.argv
    if (command.length === 0)
      return yield* new CliError({
        message: `no command after the host "${host}": cmdop connect exec <host> -- <command> [args…] (if "${host}" is the command, the host is missing)`,
        exitCode: ExitCode.usage
      })
    // @effect/cli passes an unknown flag after <host> on as a word of the command; no program name starts
    // with "-", so that is a mistyped flag, not a command to run.
    if (!remote.afterDashes && UnknownFlag.isFlag(command[0]!))
      return yield* UnknownFlag.error(
        command[0]!,
        "exec",
        ["--timeout", "--shell", ...UnknownFlag.globalFlags],
        "; the remote command goes after --"
      )
    const timeoutMs = yield* Duration.parse("--timeout", timeout)
    // The wire carries milliseconds in 32 bits: a longer timeout was a relay failure ("invalid uint32") after dialing.
    if (timeoutMs > MAX_TIMEOUT_MS)
      return yield* new CliError({
        message: `invalid --timeout "${timeout}": at most ${Math.floor(MAX_TIMEOUT_MS / 3_600_000)}h (0: no timeout)`,
        exitCode: ExitCode.usage
      })
    const Remote = yield* Effect.promise(() => import("../Remote.js"))
    const stdio = yield* Stdio
    const watched = watchStdin(stdio.stdinIfPiped())
    const started = yield* Clock.currentTimeMillis
    const sink = eventSink(g.json, stdio)
    const seen = yield* Remote.withClient(g, (client) =>
      Effect.flatMap(exactEnough(g, client, host), (machine) =>
        // Ctrl-C is the remote command's only while it runs; before, it ends the CLI as usual.
        Effect.scoped(
          Effect.flatMap(forwardCtrlC(watched), (ctrlC) =>
            client
              .exec(
                { machine, argv: command, shell: shell || RemoteArgv.needsShell(command), timeoutMs },
                watched.stdin,
                ctrlC.signals
              )
              .pipe(
                (events) => PullStream.runForEachChunk(events, sink.step),
                Effect.map(sink.seen),
                // The agent enforces the timeout; this guard only covers a relay that never answers.
                Effect.timeoutFail({
                  duration: timeoutMs > 0 ? timeoutMs + 10_000 : Infinity,
                  onTimeout: () => new ExitWith({ code: ExitCode.timeout })
                }),
                Effect.raceFirst(ctrlC.abandoned)
              )
          )
        )
      )
    )
    const e = seen.exit
    if (e === undefined) return yield* new CliError({ message: "the relay ended the session without an exit status" })
    const code = e.timedOut ? ExitCode.timeout : e.exitCode
    if (g.json)
      yield* Output.json({
        machine_id: seen.machine?.id ?? null,
        hostname: seen.machine?.hostname ?? null,
        command,
        exit_code: code,
        ...sink.collected(),
        duration_ms: e.durationMs || (yield* Clock.currentTimeMillis) - started,
        timed_out: e.timedOut,
        // The same `error` and `hint` pair as every other failure's document (`hint`: null when there is none).
        ...(e.error === undefined ? {} : { error: e.error, hint: Output.failure(e.error, code).hint })
      })
    else if (e.timedOut)
      yield* Output.notice(`cmdop: command timed out after ${Duration.format(timeoutMs)} and was killed`)
    else if (e.error !== undefined) yield* Output.notice(`cmdop: ${e.error}`)
    if (code !== 0) return yield* new ExitWith({ code })
  })
