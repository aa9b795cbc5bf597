/**
 * What the agent started, kept on disk so that a dead agent leaves nothing running. Every exec command (a process
 * group) and every PTY shell (a login session) is recorded in `<stateDir>/children` while it runs. The file is a
 * journal, appended to with one write(2) per record on a descriptor kept open (an exec costs two small appends, not
 * two rewrites of the file): `group|session <pid> <start time>` when a child starts, `end <pid> <start time>` when
 * it is gone (the start time tells the process from a later one that reuses its pid). A child is live when it has a
 * start line and no end line. The journal starts empty with each ledger and is compacted (rewritten atomically
 * with only the live children) once it has grown well past what is live.
 *
 * Two things read the file:
 * - a watchdog: a small `/bin/sh` process started with the ledger, in its own session, that waits for the end of
 *   a pipe only the agent holds. When the agent dies (even by SIGKILL) the pipe closes and the watchdog kills
 *   (SIGKILL) every group and session still listed, at once: commands never outlive the agent, so never their
 *   timeout. When the agent stops normally it has ended its children itself and the watchdog finds nothing.
 * - `reapLeftovers`, when the daemon starts: kills whatever a previous instance left listed (its watchdog killed
 *   too, say), then starts the file afresh.
 */
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as processTree from "./internal/processTree.js"
import { ProcessRunner } from "./ProcessRunner.js"

/** How a child is killed: its process group (exec commands) or its whole login session (PTY shells). */
export type Kind = "group" | "session"

export interface ChildLedger {
  /** Lists a child that now runs. */
  readonly record: (kind: Kind, pid: number) => Effect.Effect<void>
  /** Drops a child that is gone. */
  readonly forget: (pid: number) => Effect.Effect<void>
}

/** The ledger's file in the agent's state directory. */
export const file = (stateDir: string): string => path.join(stateDir, "children")

/** A ledger that records nothing (for engines run without a daemon). */
export const none: ChildLedger = { record: () => Effect.void, forget: () => Effect.void }

interface Entry {
  readonly kind: Kind
  readonly pid: number
  readonly start: string
}

/**
 * Starts an empty ledger at `ledgerFile` and its watchdog. Closing the scope stops the watchdog (it then kills
 * what is still listed) and removes the file.
 */
export const make = (ledgerFile: string): Effect.Effect<ChildLedger, never, Scope.Scope> =>
  Effect.gen(function* () {
    const journal = new Journal(ledgerFile)
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        journal.open()
        return startWatchdog(ledgerFile)
      }),
      (watchdog) =>
        Effect.sync(() => {
          // The file first: the watchdog then finds nothing to kill (everything listed has ended by now anyway).
          journal.close()
          fs.rmSync(ledgerFile, { force: true })
          watchdog.stdin?.end()
        })
    )
    const ledger: ChildLedger = {
      record: (kind, pid) =>
        Effect.sync(() => {
          const start = processTree.startTime(pid)
          if (start !== undefined) journal.add({ kind, pid, start })
        }),
      forget: (pid) => Effect.sync(() => journal.remove(pid))
    }
    return ledger
  }).pipe(Effect.withSpan("ChildLedger.make"))

/** Appended lines past which the journal is compacted, unless most of them are still live. */
const COMPACT_AFTER = 512

/** The journal file and what it lists as live; plain synchronous calls (each is one small write). */
class Journal {
  private readonly live = new Map<number, Entry>()
  private fd = -1
  private lines = 0
  constructor(private readonly target: string) {}

  /** Starts the file afresh (empty) and keeps it open for appending. */
  open(): void {
    this.rewrite()
  }

  add(entry: Entry): void {
    this.live.set(entry.pid, entry)
    this.append(format(entry))
  }

  remove(pid: number): void {
    const entry = this.live.get(pid)
    if (entry === undefined) return
    this.live.delete(pid)
    if (this.lines >= COMPACT_AFTER && this.lines >= 4 * this.live.size) this.rewrite()
    else this.append(`end ${entry.pid} ${entry.start}\n`)
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd)
    this.fd = -1
  }

  private append(line: string): void {
    if (this.fd < 0) return
    fs.writeSync(this.fd, line)
    this.lines++
  }

  /** Only the live children, through a temp file and a rename (a reader never sees half a file); reopened after. */
  private rewrite(): void {
    writeAtomically(this.target, [...this.live.values()].map(format).join(""))
    this.close()
    this.fd = fs.openSync(this.target, "a", 0o600)
    this.lines = this.live.size
  }
}

/**
 * Kills (SIGKILL) every child listed in `ledgerFile` that still runs (the same process: pid and start time match;
 * a group whose leader is gone but which still has members counts too, since its id cannot be reused while it does),
 * then removes the file. Answers how many it found running.
 */
export const reapLeftovers = (ledgerFile: string): Effect.Effect<number> =>
  Effect.sync(() => {
    let text: string
    try {
      text = fs.readFileSync(ledgerFile, "utf8")
    } catch {
      return 0
    }
    let reaped = 0
    for (const entry of parse(text)) {
      const start = processTree.startTime(entry.pid)
      if (start !== undefined && start !== entry.start) continue
      if (entry.kind === "group") {
        if (!processTree.groupAlive(entry.pid)) continue
        processTree.signalGroup(entry.pid, "SIGKILL")
      } else {
        if (start === undefined && (processTree.sessionMembers(entry.pid) ?? []).length === 0) continue
        processTree.killSessionNow(entry.pid)
      }
      reaped++
    }
    fs.rmSync(ledgerFile, { force: true })
    return reaped
  }).pipe(Effect.withSpan("ChildLedger.reapLeftovers"))

const format = (entry: Entry): string => `${entry.kind} ${entry.pid} ${entry.start}\n`

/** The live children a journal lists: start lines without a later end line for the same pid and start time. */
const parse = (text: string): Array<Entry> => {
  const live = new Map<string, Entry>()
  for (const line of text.split("\n")) {
    const [kind, pid, start] = line.trim().split(" ")
    if (!/^\d+$/.test(pid ?? "") || start === undefined) continue
    const key = `${pid} ${start}`
    if (kind === "end") live.delete(key)
    else if (kind === "group" || kind === "session") live.set(key, { kind, pid: Number(pid), start })
  }
  return [...live.values()]
}

/** Writes through a temp file and a rename, so a reader never sees half a file. */
const writeAtomically = (target: string, text: string): void => {
  fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 })
  const temp = `${target}.${process.pid}.tmp`
  fs.writeFileSync(temp, text, { mode: 0o600 })
  fs.renameSync(temp, target)
}

/**
 * The watchdog's script: block until stdin reaches its end (the agent is gone or let go), then kill what the ledger
 * lists as live: a first pass collects the `end` lines, the second kills each start line that has none. Fields of
 * `/proc/<pid>/stat` after the command name: 3 is the process group, 4 the session, 20 the start time.
 */
const WATCHDOG = `
trap '' HUP INT TERM
ledger=$1
while read -r _; do :; done
[ -r "$ledger" ] || exit 0
ended=" "
while read -r kind pid start; do
  [ "$kind" = end ] && ended="$ended$pid:$start "
done < "$ledger"
while read -r kind pid start; do
  case "$kind" in group|session) ;; *) continue ;; esac
  case "$ended" in *" $pid:$start "*) continue ;; esac
  stat=$(cat "/proc/$pid/stat" 2>/dev/null)
  if [ -n "$stat" ]; then
    set -- \${stat##*) }
    [ "\${20}" = "$start" ] || continue
  fi
  kill -KILL -"$pid" 2>/dev/null
  [ "$kind" = session ] || continue
  for dir in /proc/[0-9]*; do
    stat=$(cat "$dir/stat" 2>/dev/null) || continue
    set -- \${stat##*) }
    [ "$4" = "$pid" ] && kill -KILL "\${dir#/proc/}" 2>/dev/null
  done
done < "$ledger"
`

/**
 * Starts the watchdog in its own session; the agent keeps the write end of its stdin and nothing else. Exported for
 * the ledger's tests only.
 */
export const startWatchdog = (ledgerFile: string): ChildProcess.ChildProcess => {
  const child = ChildProcess.spawn("/bin/sh", ["-c", WATCHDOG, "cmdop-watchdog", ledgerFile], {
    stdio: ["pipe", "ignore", "ignore"],
    detached: true
  })
  child.on("error", () => {})
  child.stdin?.on("error", () => {})
  // Neither keeps the daemon's event loop alive.
  child.unref()
  ;(child.stdin as unknown as { unref?: () => void } | null)?.unref?.()
  return child
}

/**
 * For a starting daemon: kills what a previous instance left running ({@link reapLeftovers}), then starts this
 * instance's ledger in `<stateDir>/children`, with its watchdog, for the life of the scope.
 */
export const start: Effect.Effect<ChildLedger, never, CmdopPaths | Scope.Scope> = Effect.gen(function* () {
  const paths = yield* CmdopPaths
  const ledgerFile = file(paths.stateDir)
  const reaped = yield* reapLeftovers(ledgerFile)
  if (reaped > 0) yield* Effect.logWarning(`stopped ${reaped} command(s) or shell(s) a previous agent left running`)
  return yield* make(ledgerFile)
})

/** `runner`, listing each command's process group in `ledger` until the group is gone. */
export const recording = (ledger: ChildLedger, runner: ProcessRunner["Type"]): ProcessRunner["Type"] =>
  ProcessRunner.of({
    spawn: (spec) =>
      Effect.gen(function* () {
        const started = { pid: 0 }
        // Added before the spawn, so it runs after the spawn's own release has killed the group. A plain scope
        // finalizer: `Effect.addFinalizer` captures the fiber's refs and diffs them at the close, on every exec.
        yield* Scope.addFinalizer(
          yield* Effect.scope,
          Effect.suspend(() => (started.pid > 0 ? ledger.forget(started.pid) : Effect.void))
        )
        const proc = yield* runner.spawn(spec)
        started.pid = proc.pid
        if (proc.pid > 0) yield* ledger.record("group", proc.pid)
        return proc
      })
  })
