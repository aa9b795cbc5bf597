/**
 * Process-group plumbing for the exec engine: every command runs as the leader of its own process group, so its
 * whole tree (children, grandchildren, background jobs) is signalled at once through `kill(-pgid, sig)`. And
 * session plumbing for PTY sessions: a PTY's shell leads its own login session, its jobs each get a process group
 * inside it, so the whole tree is found by session id.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
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
  // ESRCH is the common answer to a probe; without a stack trace, Node builds that error several times faster.
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    process.kill(-pgid, signal)
    return true
  } catch (error) {
    // EPERM: some member changed credentials (setuid); the group is alive but not ours to signal.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  } finally {
    Error.stackTraceLimit = limit
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
    return Effect.flatMap(
      awaitGone(() => !groupAlive(pgid), grace),
      (gone) => (gone ? Effect.void : Effect.sync(() => void signalGroup(pgid, "SIGKILL")))
    )
  })

/** How often a kill looks whether its processes are gone. */
const KILL_POLL = Duration.millis(10)

/** Polls `gone` until it holds (true) or `grace` has passed (false). */
const awaitGone = (gone: () => boolean, grace: Duration.DurationInput): Effect.Effect<boolean> =>
  Effect.sync(gone).pipe(
    Effect.repeat({ schedule: Schedule.spaced(KILL_POLL), until: (done) => done }),
    Effect.timeoutTo({ duration: grace, onSuccess: () => true, onTimeout: () => false })
  )

/** The fields of `/proc/<pid>/stat` after the command name, or `undefined` when unreadable (no /proc, gone). */
const statFields = (pid: number | string): Array<string> | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    // "pid (comm) state ppid pgrp session tty_nr tpgid …": comm may hold spaces, so parse after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  } catch {
    return undefined
  }
}

/**
 * The live (non-zombie) members of the login session `sid` (a PTY's shell leads its own session; its jobs get their
 * own process groups but stay in the session). `undefined` where there is no `/proc`.
 */
export const sessionMembers = (sid: number): Array<number> | undefined => {
  if (!hasProc) return undefined
  let entries: Array<string>
  try {
    entries = fs.readdirSync("/proc")
  } catch {
    return undefined
  }
  const members: Array<number> = []
  for (const entry of entries) {
    const code = entry.charCodeAt(0)
    if (code < 48 || code > 57) continue
    const fields = statFields(entry)
    if (fields !== undefined && Number(fields[3]) === sid && fields[0] !== "Z" && fields[0] !== "X")
      members.push(Number(entry))
  }
  return members
}

/**
 * The foreground process group of the terminal `pid` controls (its `tpgid`), which is what the terminal driver
 * signals on Ctrl-C; `undefined` when unknown (no /proc, process gone, no terminal).
 */
export const foregroundGroup = (pid: number): number | undefined => {
  const tpgid = Number(statFields(pid)?.[5])
  return Number.isInteger(tpgid) && tpgid > 1 ? tpgid : undefined
}

const signalPid = (pid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(pid, signal)
  } catch {
    // gone already, or not ours
  }
}

/**
 * Kills every member of the session led by `sid` (a PTY's whole tree, all its jobs): SIGHUP and SIGTERM (an
 * interactive shell ignores TERM but not HUP), then SIGKILL once `grace` has passed with some member still alive.
 * Without /proc only the leader's process group is signalled. Completes when the members are gone or SIGKILL was sent.
 */
export const killSession = (sid: number, grace: Duration.DurationInput): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (!Number.isInteger(sid) || sid <= 1) return Effect.void
    const members = () => sessionMembers(sid) ?? (groupAlive(sid) ? [-sid] : [])
    const signalAll = (signal: NodeJS.Signals) => {
      for (const pid of members()) signalPid(pid, signal)
    }
    signalAll("SIGHUP")
    signalAll("SIGCONT")
    signalAll("SIGTERM")
    return Effect.flatMap(
      awaitGone(() => members().length === 0, grace),
      (gone) => (gone ? Effect.void : Effect.sync(() => signalAll("SIGKILL")))
    )
  })

/**
 * The process's start time (`starttime` of `/proc/<pid>/stat`, in clock ticks since boot), which tells a process
 * from a later one that got the same pid; `undefined` when it is gone or there is no `/proc`.
 */
export const startTime = (pid: number): string | undefined => statFields(pid)?.[19]

/** Kills (SIGKILL) every member of the login session `sid`, and its leader's group. */
export const killSessionNow = (sid: number): void => {
  if (!Number.isInteger(sid) || sid <= 1) return
  for (const pid of sessionMembers(sid) ?? []) signalPid(pid, "SIGKILL")
  signalGroup(sid, "SIGKILL")
}
