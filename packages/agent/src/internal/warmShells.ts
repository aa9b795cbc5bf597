/**
 * Exec commands started from a shell spawned ahead of time. `child_process.spawn` forks the agent: on a machine where
 * page-table work is dear (a VM), copying a 70 MiB Node process takes 3–10 ms, all of it on the agent's event loop,
 * and every warm exec waited for it. A warm shell is `/bin/sh` already spawned (detached, its own process group, the
 * agent's environment without its secrets, the agent user's home as cwd, three pipes) and waiting on a fourth pipe
 * for a script. Taking one costs the agent one small write: the script sets the command's extra environment and
 * `exec`s the command, which so becomes the very process the agent spawned — same pid, same process group, its exit
 * status and signal seen by the agent as its child's. The next shell is spawned right after a command's end has
 * been handed on (its pipes closed, so its output and Exit are written; see `ended`), in the gap while the Exit
 * travels and, in a program's loop, the next call comes back; while a command runs, once no command has started or
 * ended for a while ({@link QUIET_MS}). So the fork sits neither between an exec request and its command nor between
 * the command's end and its Exit.
 *
 * A command takes a warm shell only when the shell can start it exactly as `spawn` would; anything else goes the
 * plain way, so every error (a missing command or directory, a file that is not executable) keeps its message:
 * - the cwd is the shell's (the home directory), and every extra variable's name is one the shell can export;
 * - no word and no value holds a NUL byte (the shell would drop it; spawn refuses it, with its error);
 * - the program resolves, here and now, to an executable regular file (the lookup `execvp` does, on the command's
 *   PATH) — a script's `#!` interpreter too — and does not start with `-` (`exec` would read it as an option);
 * - the script stays small (the shell reads it a byte at a time).
 * `/bin/sh` must be dash (Debian, Ubuntu), the one shell this was checked with: bash as `sh`, for one, sets `SHLVL`
 * and `_` in what it runs. Elsewhere every command is spawned the plain way. Dash's one change to the environment,
 * `PWD` (set to the cwd at start), is put back by the script.
 *
 * A warm shell whose agent goes away reads end-of-file on its script pipe, runs the empty script and exits.
 *
 * Where the C library's `posix_spawn` can be bound (`@cmdop/node/PosixSpawn`: it copies no page tables, so there is
 * no fork to move off the way), the agent's runner starts commands with it from the first command on and closes the
 * pool; warm shells serve until then, and on machines without it.
 */
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Writable } from "node:stream"
import { commandLine } from "./commandLine.js"
import * as ProgramPath from "./programPath.js"

/**
 * The script a warm shell runs: read fd 3 to its end, close it, run what was read. `read` drops each line's end;
 * the newline inside the quotes puts it back.
 */
const WAITING = 's=; while IFS= read -r l <&3; do s="$s$l\n"; done; exec 3<&-; eval "$s"'.replace("\\n", "\n")

/**
 * While a command runs, the next shell is spawned once no command has started or ended for this long: its fork takes
 * the event loop for as long as a plain spawn does, so it must not land on a command's way in or out (measured: a
 * fork 10 ms after the last start or end landed on the next call of a loop of back-to-back execs, 5–8 ms slower per
 * call on a busy machine).
 */
const QUIET_MS = 100

/** Scripts longer than this go the plain way (the shell's `read` takes one byte per system call). */
const MAX_SCRIPT = 8 * 1024

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

export interface WarmShells {
  /**
   * A child running the command of `spec` (`argv`, or with `shell` set `[$SHELL or /bin/sh, "-c", argv joined]`) with
   * `spec.env` over the base environment, in `cwd`, from a warm shell; `undefined` when there is none ready or the
   * command must go the plain way (see the module header).
   */
  readonly take: (
    spec: {
      readonly argv: ReadonlyArray<string>
      readonly shell: boolean
      readonly env?: Record<string, string> | undefined
    },
    cwd: string
  ) => ChildProcess.ChildProcess | undefined
  /** Whether a shell is ready now. */
  readonly isReady: () => boolean
  /**
   * A command ended (whichever way it was started) and its pipes are closed: the next shell is spawned as soon as
   * this turn of the event loop is over, after the writes the end caused (the output's last piece, the Exit).
   */
  readonly ended: () => void
  /** Ends the waiting shell, and spawns no more. */
  readonly close: () => void
}

/** Whether `/bin/sh` is dash, which adds nothing to the environment of what it `exec`s but `PWD`. */
export const supported = (): boolean => {
  try {
    return path.basename(fs.realpathSync("/bin/sh")) === "dash"
  } catch {
    return false
  }
}

/** Single-quoted for the shell: every byte as it is. */
const quote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`

interface Shell {
  readonly child: ChildProcess.ChildProcess
  /** The environment it was spawned with. */
  readonly env: Record<string, string>
}

/**
 * A pool of one warm shell with `baseEnv()` (the agent's environment without its secrets, read as each shell is
 * spawned) and `home` as cwd, or `undefined` where `/bin/sh` cannot be one.
 */
export const make = (
  baseEnv: () => Record<string, string>,
  home: string,
  quietMs: number = QUIET_MS
): WarmShells | undefined => {
  if (!supported()) return undefined
  let ready: Shell | undefined
  let closed = false

  const spawnOne = (): Shell | undefined => {
    const env = baseEnv()
    try {
      const child = ChildProcess.spawn("/bin/sh", ["-c", WAITING], {
        cwd: home,
        env,
        detached: true,
        stdio: ["pipe", "pipe", "pipe", "pipe"]
      })
      for (const stream of child.stdio) stream?.on("error", () => {})
      child.on("error", () => {})
      if (child.pid === undefined) return undefined
      // A shell that ends while waiting (killed from outside) is no longer ready.
      const shell: Shell = { child, env }
      child.once("exit", () => {
        if (ready === shell) ready = undefined
      })
      return shell
    } catch {
      return undefined
    }
  }

  let refill: NodeJS.Timeout | undefined
  /** A command started or ended: the next shell waits for `quietMs` more without either. */
  const stir = () => {
    if (closed || ready !== undefined) return
    if (refill !== undefined) refill.refresh()
    else
      refill = setTimeout(() => {
        refill = undefined
        if (!closed && ready === undefined) ready = spawnOne()
      }, quietMs)
  }

  let soon: NodeJS.Immediate | undefined
  /**
   * A command ended: the next shell is spawned once this turn of the event loop is over — after the microtasks that
   * hand its Exit to grpc-js and after HTTP/2's own flush (Node runs its native immediates before these), so the
   * fork lands in the gap while the Exit goes to the client and, in a program's loop, the next call comes back. A
   * timer of 1 ms (the shortest Node has) put it 1 ms into that ~3 ms gap, where its 2–4 ms fork often ran into the
   * next call's arrival. Waiting for quiet, a loop would never find any, and every call of it would be spawned the
   * plain way.
   */
  const refillSoon = () => {
    if (closed || ready !== undefined || soon !== undefined) return
    if (refill !== undefined) clearTimeout(refill)
    refill = undefined
    soon = setImmediate(() => {
      soon = undefined
      if (!closed && ready === undefined) ready = spawnOne()
    })
  }

  /** `spec` from the shell ready now, or `undefined` (none ready, or a command that must go the plain way). */
  const takeOne = (spec: Parameters<WarmShells["take"]>[0], cwd: string): ChildProcess.ChildProcess | undefined => {
    const shell = ready
    if (shell === undefined || closed || cwd !== home) return undefined
    const { child, env } = shell
    const extraEnv = spec.env
    const argv = commandLine(spec, extraEnv !== undefined && "SHELL" in extraEnv ? extraEnv.SHELL : env.SHELL)
    const file = argv[0]
    if (file === undefined || file === "" || file.startsWith("-")) return undefined
    const vars = Object.entries(extraEnv ?? {})
    if (!vars.every(([name, value]) => NAME.test(name) && !value.includes("\0"))) return undefined
    // A NUL byte the shell would drop without a word (`a\0b` read as `ab`); spawn refuses such an argument.
    if (argv.some((word) => word.includes("\0"))) return undefined
    if (ProgramPath.find(file, extraEnv?.PATH ?? env.PATH, cwd, ProgramPath.startable) === undefined) return undefined
    let script = env.PWD === undefined ? "unset PWD\n" : `export PWD=${quote(env.PWD)}\n`
    for (const [name, value] of vars) script += `export ${name}=${quote(value)}\n`
    script += `exec ${argv.map(quote).join(" ")}\n`
    if (script.length > MAX_SCRIPT) return undefined
    ready = undefined
    ;(child.stdio[3] as Writable).end(script)
    return child
  }

  ready = spawnOne()
  return {
    isReady: () => ready !== undefined,
    ended: refillSoon,
    take: (spec, cwd) => {
      const child = takeOne(spec, cwd)
      stir()
      return child
    },
    close: () => {
      closed = true
      if (refill !== undefined) clearTimeout(refill)
      if (soon !== undefined) clearImmediate(soon)
      const shell = ready
      ready = undefined
      // End-of-file on its script pipe: the shell runs nothing and exits.
      for (const stream of shell?.child.stdio ?? []) stream?.destroy()
    }
  }
}
