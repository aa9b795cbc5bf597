/**
 * Whether a process is still running, read from Linux `/proc` (a zombie left to a non-reaping PID 1 counts as
 * gone), and waiting until a set of processes is gone.
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import { eventuallySync, type Options } from "./Eventually.js"

/** The one-letter state of `pid` from `/proc/<pid>/stat`, or undefined when there is no such process. */
export const state = (pid: number): string | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)
  } catch {
    return undefined
  }
}

/** True while `pid` is a live process (not a zombie, not gone). */
export const isRunning = (pid: number): boolean => {
  const s = state(pid)
  return s !== undefined && s !== "Z" && s !== "X"
}

/** The program name `pid` runs (`/proc/<pid>/comm`), or undefined when there is no such process. */
export const programOf = (pid: number): string | undefined => {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim()
  } catch {
    return undefined
  }
}

/** Waits until none of `pids` is running; fails naming the survivors after the timeout. */
export const allGone = (pids: ReadonlyArray<number>, options?: Options) =>
  eventuallySync(`processes ${pids.join(", ")} to end`, () => (pids.some(isRunning) ? undefined : true), options).pipe(
    Effect.asVoid
  )
