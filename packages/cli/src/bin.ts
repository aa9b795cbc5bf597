/**
 * The `cmdop` executable: runs the command tree in the real environment and exits with its code.
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

// Loaded after the environment above is set (static imports would run first).
const [NodeRuntime, Effect, { main }, Layers] = await Promise.all([
  import("@effect/platform-node/NodeRuntime"),
  import("effect/Effect"),
  import("./Cli.js"),
  import("./Layers.js")
])

main(process.argv).pipe(
  Effect.provide(Layers.live),
  Effect.flatMap((code) => Effect.sync(() => (process.exitCode = code))),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
