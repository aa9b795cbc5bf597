/**
 * The byte streams a command reads and writes beyond its console lines: a remote command's stdout and stderr, and
 * the stdin it is fed. `layerProcess` is the process's own (writes wait for `drain`, so a slow terminal or pipe
 * slows the remote command instead of filling memory; stdin is pull-based); `layerMemory` feeds a given text and
 * hands the bytes written to callbacks, for programs that run the command tree in-process.
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

export class Stdio extends Context.Tag("@cmdop/cli/Stdio")<
  Stdio,
  {
    readonly stdout: (data: Uint8Array) => Effect.Effect<void>
    readonly stderr: (data: Uint8Array) => Effect.Effect<void>
    /**
     * Writes a batch of a remote command's output in order, each piece to stdout or stderr, in one plain loop, then
     * waits until both can take more (`drain`): the batch is already in memory, so backpressure per batch bounds
     * memory as well as per piece does, without an Effect per piece.
     */
    readonly output: (pieces: ReadonlyArray<OutputPiece>) => Effect.Effect<void>
    /** Stdin when it is not a terminal (a pipe or a file); `undefined` for a terminal. Ends like EOF on a read error. */
    readonly stdinIfPiped: () => Stream.Stream<Uint8Array> | undefined
    /** True when both stdin and stdout are terminals: only then may a command prompt. */
    readonly interactive: boolean
    /**
     * While the scope is open, Ctrl-C (SIGINT) no longer ends the CLI: each press is an element of the stream
     * instead (exec forwards it to the remote command, as a terminal would). Closing the scope restores it.
     */
    readonly interrupts: Effect.Effect<Stream.Stream<void>, never, Scope.Scope>
    /**
     * While the scope is open, SIGTERM no longer interrupts the CLI (which would end it with status 0): the effect
     * it answers resumes when one arrives, so the command can end with 143, as a process killed by SIGTERM.
     */
    readonly terminated: Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
  }
>() {}

/** A piece of a remote command's output: its bytes and whether they go to stderr (else stdout). */
export interface OutputPiece {
  readonly stderr: boolean
  readonly data: Uint8Array
}

/** Writes `data` to a Node writable, waiting for `drain` when its buffer is full. */
export const write = (target: NodeJS.WritableStream, data: Uint8Array): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (target.write(data)) resume(Effect.void)
    else target.once("drain", () => resume(Effect.void))
  })

/**
 * Resumes once `target` no longer needs a drain (it may have drained already) or has closed. No `error` listener
 * here: a write error (a closed pipe) ends the CLI (`bin.ts`: quietly, status 141 as after SIGPIPE), which ends the
 * remote command.
 */
const drained = (target: NodeJS.WritableStream & { readonly writableNeedDrain?: boolean }): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (target.writableNeedDrain !== true) return resume(Effect.void)
    const events = ["drain", "close"] as const
    const detach = () => {
      for (const event of events) target.removeListener(event, done)
    }
    const done = () => {
      detach()
      resume(Effect.void)
    }
    for (const event of events) target.on(event, done)
    return Effect.sync(detach)
  })

const bothDrained = Effect.zipRight(drained(process.stdout), drained(process.stderr))

/** Writes the pieces to the process's stdout and stderr, then waits for whichever of them needs a drain. */
const processOutput = (pieces: ReadonlyArray<OutputPiece>): Effect.Effect<void> => {
  let full = false
  for (const piece of pieces) if (!(piece.stderr ? process.stderr : process.stdout).write(piece.data)) full = true
  return full ? bothDrained : Effect.void
}

/** The process's stdin, stdout and stderr. */
export const layerProcess: Layer.Layer<Stdio> = Layer.sync(Stdio, () =>
  Stdio.of({
    stdout: (data) => write(process.stdout, data),
    stderr: (data) => write(process.stderr, data),
    output: processOutput,
    stdinIfPiped: () =>
      process.stdin.isTTY
        ? undefined
        : NodeStream.fromReadable<Error, Uint8Array>(
            () => process.stdin,
            (error) => (error instanceof Error ? error : new Error(String(error))),
            { chunkSize: 64 * 1024 }
          ).pipe(Stream.catchAll(() => Stream.empty)),
    interactive: process.stdin.isTTY === true && process.stdout.isTTY === true,
    interrupts: captureSignal("SIGINT"),
    terminated: Effect.map(captureSignal("SIGTERM"), (arrivals) => Effect.asVoid(Stream.runHead(arrivals)))
  })
)

/** A signal as a stream while the scope is open; the listeners it displaced (the runtime's) come back after. */
const captureSignal = (signal: "SIGINT" | "SIGTERM") =>
  Effect.gen(function* () {
    const arrivals = yield* Queue.unbounded<void>()
    const onSignal = () => void Queue.unsafeOffer(arrivals, undefined)
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const displaced = process.listeners(signal)
        process.removeAllListeners(signal)
        process.on(signal, onSignal)
        return displaced
      }),
      (displaced) =>
        Effect.sync(() => {
          process.removeListener(signal, onSignal)
          for (const listener of displaced) process.on(signal, listener as () => void)
        })
    )
    return Stream.fromQueue(arrivals)
  })

export interface MemoryOptions {
  /** What stdin holds; `undefined` stands for a terminal (nothing piped). */
  readonly stdin?: string | undefined
  readonly stdout: (data: Uint8Array) => void
  readonly stderr: (data: Uint8Array) => void
}

/** Stdin from a string, stdout and stderr to callbacks; never interactive, never interrupted. */
export const layerMemory = (options: MemoryOptions): Layer.Layer<Stdio> =>
  Layer.succeed(
    Stdio,
    Stdio.of({
      stdout: (data) => Effect.sync(() => options.stdout(data)),
      stderr: (data) => Effect.sync(() => options.stderr(data)),
      output: (pieces) =>
        Effect.sync(() => {
          for (const piece of pieces) (piece.stderr ? options.stderr : options.stdout)(piece.data)
        }),
      stdinIfPiped: () =>
        options.stdin === undefined ? undefined : Stream.succeed(new TextEncoder().encode(options.stdin)),
      interactive: false,
      interrupts: Effect.succeed(Stream.never),
      terminated: Effect.succeed(Effect.never)
    })
  )
