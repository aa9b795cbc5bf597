/**
 * Process-group plumbing for the exec engine: every command runs as the leader of its own process group, so its
 * whole tree (children, grandchildren, background jobs) is signalled at once through `kill(-pgid, sig)`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"

/**
 * Normalizes a signal name as the relay sends it (`"INT"`, `"SIGINT"`, `"int"`) to Node's spelling, or `undefined`
 * when the platform does not know it.
 */
export const normalizeSignal = (name: string): NodeJS.Signals | undefined => {
  const upper = name.trim().toUpperCase()
  const full = upper.startsWith("SIG") ? upper : `SIG${upper}`
  return full in os.constants.signals ? (full as NodeJS.Signals) : undefined
}

/** The signal's number (`SIGTERM` → 15), for the shell convention `exitCode = 128 + n`. */
export const signalNumber = (signal: NodeJS.Signals): number => os.constants.signals[signal] ?? 0

/** The name without its `SIG` prefix (`SIGTERM` → `TERM`), as reported to the relay. */
export const shortName = (signal: string): string => (signal.startsWith("SIG") ? signal.slice(3) : signal)

/**
 * Sends `signal` (or 0, the existence probe) to every member of the group. Returns `false` when the group has no
 * member left (ESRCH). Refuses group ids 0 and 1, which would address our own group or every process.
 */
export const signalGroup = (pgid: number, signal: NodeJS.Signals | 0): boolean => {
  if (!Number.isInteger(pgid) || pgid <= 1) return false
  try {
    process.kill(-pgid, signal)
    return true
  } catch (error) {
    // EPERM: some member changed credentials (setuid); the group is alive but not ours to signal.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const hasProc = fs.existsSync("/proc/self/stat")

/**
 * Whether the group still has a live member. On Linux zombies do not count: orphaned members are reparented to
 * PID 1, which in containers often never reaps them, and `kill(-pgid, 0)` would report them forever.
 */
export const groupAlive = (pgid: number): boolean => {
  if (!signalGroup(pgid, 0)) return false
  if (!hasProc) return true
  let entries: Array<string>
  try {
    entries = fs.readdirSync("/proc")
  } catch {
    return true
  }
  for (const entry of entries) {
    const code = entry.charCodeAt(0)
    if (code < 48 || code > 57) continue
    let stat: string
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "latin1")
    } catch {
      continue
    }
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so parse after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") return true
  }
  return false
}

/**
 * Kills the whole group: SIGTERM, then SIGKILL once `grace` has passed with some member still alive. Completes when
 * the group is gone or SIGKILL has been sent.
 */
export const killGroup = (pgid: number, grace: Duration.DurationInput): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (!signalGroup(pgid, "SIGTERM")) return Effect.void
    const deadline = Date.now() + Duration.toMillis(grace)
    const poll: Effect.Effect<void> = Effect.suspend(() => {
      if (!groupAlive(pgid)) return Effect.void
      if (Date.now() >= deadline) return Effect.sync(() => void signalGroup(pgid, "SIGKILL"))
      return Effect.zipRight(Effect.sleep(Duration.millis(20)), poll)
    })
    return Effect.zipRight(Effect.sleep(Duration.millis(5)), poll)
  })
