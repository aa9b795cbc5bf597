/**
 * The `cmdop` executable: runs the command tree in the real environment and exits with its code.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import { main } from "./Cli.js"
import * as Layers from "./Layers.js"

// Node's warnings are for developers; a user sees one line per error. (grpc-js sets a TLS server name from an IP
// address, which Node reports as deprecated.)
process.removeAllListeners("warning")
process.on("warning", (warning) => {
  if (warning.name !== "DeprecationWarning") process.stderr.write(`cmdop: ${warning.name}: ${warning.message}\n`)
})

main(process.argv).pipe(
  Effect.provide(Layers.live),
  Effect.flatMap((code) => Effect.sync(() => (process.exitCode = code))),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
