/**
 * The keystroke echo benchmark, both sides measured by the same code: a PTY on the remote side runs
 * `stty -icanon -echo min 1 time 0 && printf ECHO-READY && exec cat`, so every byte typed reaches `cat` at once
 * and `cat` writes it back (the terminal's own echo is off, so each byte comes back exactly once, from a process,
 * as with a shell's line editor). After the marker, each round writes one byte (`a`…`z` in turn) and times until
 * that byte arrives in the output; the next round starts only then. A final Ctrl-C (the PTY still turns it into
 * SIGINT) ends `cat` and with it the session.
 *
 * Bundled on the fly by `bench/run.mjs` and run as
 * - `node echo.mjs cmdop <n> <server> <api key> <machine>`: one `RelayClient` (`RelayClientGrpc.make`), one
 *   `attach` with `command: ["/bin/sh", "-c", …]`, input through a queue, output events as they come;
 * - `node echo.mjs ssh <n> -- <ssh args…>`: `ssh <ssh args…> '<the same command>'` as a child process (the args
 *   should include `-tt` and the ControlMaster options), bytes written to its stdin pipe, read from its stdout pipe.
 * `WARMUP` rounds first, then `n` timed ones; prints `{ "samples": [ms, …], "warmup": [ms, …] }`. Any failure prints one line to
 * stderr and exits 1.
 */
import { AttachInput } from "@cmdop/domain/RelayClient"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as RelayClientGrpc from "@cmdop/protocol/RelayClientGrpc"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"

/**
 * `BENCH_ECHO_WARMUP` rounds before the timed ones (timed too, printed as `warmup`): the relay and the agent are
 * fresh processes, and V8 takes a few hundred keystrokes to compile their PTY path — a relay in service has.
 */
const WARMUP = Number(process.env.BENCH_ECHO_WARMUP ?? 1000)
const MARKER = "ECHO-READY"
const COMMAND = `stty -icanon -echo min 1 time 0 && printf ${MARKER} && exec cat`
const ROUND_TIMEOUT_MS = 5_000
const START_TIMEOUT_MS = 20_000

const [mode, nArg, ...rest] = process.argv.slice(2)
const n = Number(nArg)
if ((mode !== "cmdop" && mode !== "ssh") || !Number.isInteger(n) || n <= 0) {
  process.stderr.write("usage: echo cmdop <n> <server> <api key> <machine> | echo ssh <n> -- <ssh args…>\n")
  process.exit(2)
}

/** A byte pipe to a remote PTY: `write` sends bytes, the transport calls `feed` with every output chunk. */
interface Link {
  readonly write: (bytes: Uint8Array) => void
  /** Resolves when the remote side has ended (after the final Ctrl-C). */
  readonly ended: Promise<unknown>
  readonly close: () => void
}

/** Everything received so far (as latin1 text, one char per byte) and a single waiter on it. */
const makeSink = () => {
  let received = ""
  let waiter: { readonly until: () => boolean; readonly resolve: () => void } | undefined
  /** Set before the final Ctrl-C: from then on the remote side ending is expected. */
  const state = { finishing: false }
  const feed = (chunk: Uint8Array) => {
    received += Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1")
    if (waiter !== undefined && waiter.until()) {
      const w = waiter
      waiter = undefined
      w.resolve()
    }
  }
  const waitUntil = (what: string, until: () => boolean, timeoutMs: number) =>
    until()
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            waiter = undefined
            reject(
              new Error(
                `${what}: nothing within ${timeoutMs} ms (received so far: ${JSON.stringify(received.slice(-80))})`
              )
            )
          }, timeoutMs)
          waiter = {
            until,
            resolve: () => {
              clearTimeout(timer)
              resolve()
            }
          }
        })
  return { feed, waitUntil, received: () => received, state }
}

/** The measurement, the same for both transports. */
const measure = async (link: Link, sink: ReturnType<typeof makeSink>) => {
  await sink.waitUntil("the ready marker", () => sink.received().includes(MARKER), START_TIMEOUT_MS)
  let pos = sink.received().indexOf(MARKER) + MARKER.length
  if (sink.received().length > pos) throw new Error(`unexpected output after the marker: ${sink.received().slice(pos)}`)
  const samples: Array<number> = []
  const warmup: Array<number> = []
  for (let i = 0; i < WARMUP + n; i++) {
    const byte = 0x61 + (i % 26)
    const at = pos
    const t0 = performance.now()
    link.write(Uint8Array.of(byte))
    await sink.waitUntil(`echo of round ${i + 1}`, () => sink.received().length > at, ROUND_TIMEOUT_MS)
    const ms = performance.now() - t0
    const got = sink.received().charCodeAt(at)
    if (got !== byte || sink.received().length !== at + 1)
      throw new Error(`round ${i + 1}: sent ${byte}, got ${JSON.stringify(sink.received().slice(at))}`)
    pos = at + 1
    if (i >= WARMUP) samples.push(ms)
    else warmup.push(ms)
  }
  // Ctrl-C: SIGINT to cat, the session ends.
  sink.state.finishing = true
  link.write(Uint8Array.of(0x03))
  const ended = await Promise.race([
    link.ended.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000))
  ])
  if (!ended) process.stderr.write("echo: the remote side did not end after Ctrl-C; closing it\n")
  return { samples, warmup }
}

const viaSsh = async (args: ReadonlyArray<string>) => {
  const sink = makeSink()
  const child = spawn("ssh", [...args, COMMAND], { stdio: ["pipe", "pipe", "pipe"] })
  let stderr = ""
  child.stderr.on("data", (c: Buffer) => void (stderr += c))
  child.stdout.on("data", (c: Buffer) => sink.feed(c))
  const ended = new Promise((resolve) => child.on("close", resolve))
  const failed = new Promise<never>((_, reject) => {
    child.on("error", reject)
    child.on("close", (code) => {
      if (!sink.state.finishing) reject(new Error(`ssh ended early (exit ${code}): ${stderr.trim()}`))
    })
  })
  failed.catch(() => {})
  const link: Link = { write: (bytes) => void child.stdin.write(bytes), ended, close: () => child.kill("SIGKILL") }
  try {
    return await Promise.race([measure(link, sink), failed])
  } finally {
    link.close()
  }
}

const viaCmdop = (server: string, apiKey: string, machine: string) =>
  Effect.gen(function* () {
    const client = yield* RelayClientGrpc.make({ server, apiKey: Redacted.make(apiKey) })
    const input = yield* Queue.unbounded<AttachInput>()
    const sink = makeSink()
    let endedWith: string | undefined
    const fiber = yield* client
      .attach(
        { machine, cols: 80, rows: 24, term: "xterm-256color", command: ["/bin/sh", "-c", COMMAND] },
        PullStream.fromQueue(input)
      )
      .pipe(
        // Read by its pull, as the CLI's attach reads it (`Stream.runForEach` would add its stages per keystroke).
        (events) =>
          PullStream.runForEach(events, (event) =>
            Effect.sync(() => {
              if (event._tag === "Output") sink.feed(event.data)
              else if (event._tag === "Ended") endedWith = `${event.reason} (exit ${event.exitCode})`
            })
          ),
        Effect.forkScoped
      )
    const ended = Effect.runPromise(fiber.await)
    const link: Link = {
      write: (data) => void Queue.unsafeOffer(input, AttachInput.Data({ data })),
      ended,
      close: () => void Queue.unsafeOffer(input, AttachInput.Data({ data: Uint8Array.of(0x03) }))
    }
    // The attach failing (or ending) before the measurement is done fails the measurement.
    const failed = ended.then((exit) => {
      if (!sink.state.finishing) throw new Error(`the attach ended early: ${endedWith ?? JSON.stringify(exit)}`)
      return new Promise<never>(() => {})
    })
    failed.catch(() => {})
    return yield* Effect.tryPromise({
      try: () => Promise.race([measure(link, sink), failed]),
      catch: (e) => (e instanceof Error ? e.message : String(e))
    })
  })

const main = (): Promise<{ samples: Array<number>; warmup: Array<number> }> => {
  if (mode === "ssh") {
    const sep = rest.indexOf("--")
    return viaSsh(sep >= 0 ? rest.slice(sep + 1) : rest)
  }
  const [server, apiKey, machine] = rest
  if (server === undefined || apiKey === undefined || machine === undefined)
    return Promise.reject(new Error("cmdop mode needs <server> <api key> <machine>"))
  return Effect.runPromise(Effect.scoped(viaCmdop(server, apiKey, machine)))
}

main().then(
  (result) => {
    process.stdout.write(JSON.stringify(result) + "\n")
    process.exit(0)
  },
  (error) => {
    process.stderr.write(`echo: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
)
