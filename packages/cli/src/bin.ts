/**
 * The `cmdop` executable's program: runs the command tree in the real environment and exits with its code.
 * Bundled (scripts/build.mjs) into one CommonJS file, `dist/cli.cjs`, which `boot.ts` compiles with V8's code
 * cache; what a command does not need stays behind `import()`, which esbuild turns into lazy module
 * initialisers (the code is in the file, but neither compiled nor run until asked for).
 */
// grpc-js's own logger prints lines such as "E No address added out of total 1 resolved" (a busy port) before
// cmdop's one-line message about the same failure: every failure that matters reaches cmdop as an error and is
// said once, in its words. Set before grpc-js loads (it reads the variable once); an explicit setting wins.
process.env["GRPC_VERBOSITY"] ??= "NONE"

// Node's warnings are for developers; a user sees one line per error. (grpc-js sets a TLS server name from an IP
// address, which Node reports as deprecated.)
process.removeAllListeners("warning")
process.on("warning", (warning) => {
  if (warning.name !== "DeprecationWarning") process.stderr.write(`cmdop: ${warning.name}: ${warning.message}\n`)
})

// A reader that goes away (`cmdop connect exec box -- yes | head`) closes the pipe: end as ssh does, quietly, with
// the status of a process killed by SIGPIPE (128 + 13). Exiting closes the connection, which ends the remote command.
// Without this, Node prints an unhandled EPIPE stack trace. Other write errors are said in one line.
for (const [name, stream] of [
  ["stdout", process.stdout],
  ["stderr", process.stderr]
] as const)
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE" && name === "stdout")
      process.stderr.write(`cmdop: writing to stdout: ${error.message}\n`)
    process.exit(error.code === "EPIPE" ? 141 : 1)
  })

/** How long a finished command waits for the handles its libraries left open to close by themselves. */
const EXIT_GRACE_MS = 1_500

/**
 * The command is done, so the process ends: normally at once, as Node's event loop empties; if a library left a
 * handle open (a database connection still closing when a failed start tore everything down, seen with the
 * cluster's listening connection), after `EXIT_GRACE_MS`, once what was written to stdout and stderr is flushed.
 * A relay whose start failed must exit, or a service manager never restarts it.
 */
const exitWhenDone = (): void => {
  const flushedThenExit = () => {
    const pending = [process.stdout, process.stderr].find((s) => s.writableLength > 0)
    if (pending === undefined) process.exit()
    else pending.once("drain", flushedThenExit)
  }
  setTimeout(flushedThenExit, EXIT_GRACE_MS).unref()
}

/**
 * The signal that ended the command, if one did: the runtime turns it into the interruption of the command's fiber,
 * whose exit status it would make 0 (`Cli.interruptedExitCode` says which it is). Listened for from where the
 * runtime starts listening (until then a signal ends the process as Node's default does), so it changes nothing else.
 */
let signalled: "SIGINT" | "SIGTERM" | undefined
const onSigint = () => void (signalled ??= "SIGINT")
const onSigterm = () => void (signalled ??= "SIGTERM")
const noteSignals = (on: boolean) => {
  process[on ? "on" : "removeListener"]("SIGINT", onSigint)
  process[on ? "on" : "removeListener"]("SIGTERM", onSigterm)
}

// Loaded after the environment above is set (static imports would run first). No top-level await: the bundle
// is CommonJS, so the code cache can hold it.
void Promise.all([
  import("@effect/platform-node/NodeRuntime"),
  import("effect/Effect"),
  import("effect/Exit"),
  import("effect/Cause"),
  import("./Cli.js"),
  import("./Layers.js")
]).then(([NodeRuntime, Effect, Exit, Cause, { main, interruptedExitCode }, Layers]) => {
  noteSignals(true)
  main(process.argv).pipe(
    Effect.provide(Layers.live),
    Effect.flatMap((code) =>
      Effect.sync(() => {
        process.exitCode = code
        exitWhenDone()
      })
    ),
    NodeRuntime.runMain({
      disableErrorReporting: true,
      disablePrettyLogger: true,
      // The runtime's own teardown, but a command a signal interrupted exits 130 or 143, not 0.
      teardown: (exit, onExit) => {
        noteSignals(false)
        onExit(
          Exit.isSuccess(exit)
            ? 0
            : !Cause.isInterruptedOnly(exit.cause)
              ? 1
              : signalled === undefined
                ? 0
                : interruptedExitCode(process.argv.slice(2), signalled)
        )
      }
    })
  )
})
