/**
 * The `cmdop` executable: runs the command tree in the real environment and exits with its code.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import { main } from "./Cli.js"
import * as Layers from "./Layers.js"

main(process.argv).pipe(
  Effect.provide(Layers.live),
  Effect.flatMap((code) => Effect.sync(() => (process.exitCode = code))),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
