/**
 * The process a runner hands back when a command could not start (both the real runner and the in-memory one):
 * nothing to read or write, and `exit` says why.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { ExitInfo, RunningProcess } from "../ProcessRunner.js"

export const notStarted = (exited: Deferred.Deferred<ExitInfo>): RunningProcess => ({
  pid: 0,
  output: Stream.empty,
  write: () => Effect.void,
  closeStdin: Effect.void,
  signal: () => Effect.void,
  kill: Effect.void,
  exit: Deferred.await(exited)
})
