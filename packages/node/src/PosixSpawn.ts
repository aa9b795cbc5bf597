/**
 * Starting a program with the C library's `posix_spawn` instead of `child_process.spawn`. Node forks: the kernel
 * copies the page tables of the whole process, so a 70–100 MiB agent pays 1–3 ms of CPU per command on a VM, on its
 * event loop (41% of the agent's busy time in a loop of warm execs, measured). glibc's `posix_spawn` starts the
 * child with `clone(CLONE_VM | CLONE_VFORK)`, which copies nothing: 0.3–0.6 ms of CPU whatever the size
 * (bench/README.md, "posix_spawn").
 *
 * The child is started exactly as the agent's plain spawn starts it (`detached`, three pipes): its own session and
 * process group, every signal at its default and none blocked (Node ignores SIGPIPE; a child must not inherit that),
 * stdin, stdout and stderr on UNIX socket pairs as libuv makes them, none of this process's own descriptors
 * (everything Node and this module open is close-on-exec; what the process inherited without it passes on, as with
 * a plain spawn), the given environment and working directory. It is reaped here: on SIGCHLD (and
 * once a second while any is running, so a lost signal cannot leave one unreaped) each child started here is asked
 * for with `waitpid(pid, WNOHANG)`, never `-1`, so libuv's own children stay libuv's.
 *
 * {@link load} binds the few C functions through koffi (a maintained FFI with prebuilt binaries), or answers
 * `undefined` where it cannot: not Linux, no glibc, a glibc older than 2.29 (`posix_spawn_file_actions_addchdir_np`).
 * {@link Spawner.spawn} answers `undefined` rather than fail: for anything it does not start exactly as Node would
 * (a NUL byte in a word, an exec the kernel refuses), the caller spawns the plain way, whose error is the one to show.
 */
import { EventEmitter } from "node:events"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import type { Readable, Writable } from "node:stream"

/** A child started by {@link Spawner.spawn}: what a `ChildProcess` offers for a detached child with three pipes. */
export interface PosixChild {
  readonly pid: number
  readonly stdin: Writable
  readonly stdout: Readable
  readonly stderr: Readable
  /** How it exited: once, when it has been reaped (`code` for an exit, `signal` for a death by signal). */
  once(event: "exit", listener: (code: number | null, signal: NodeJS.Signals | null) => void): this
  /** Once it has exited and its stdout and stderr have closed, as a `ChildProcess`'s `close`. */
  once(event: "close", listener: (code: number | null, signal: NodeJS.Signals | null) => void): this
  /** Never emitted (a failure to start is an `undefined` from `spawn`); here so the child reads as a `ChildProcess`. */
  on(event: "error", listener: (error: Error) => void): this
}

export interface Spawner {
  /**
   * Starts `file` (a path to the program, as found on PATH by the caller) with `argv` (its `argv[0]` included),
   * `env` and `cwd`, leading a session of its own; `undefined` when it was not started (see the module header).
   */
  readonly spawn: (
    file: string,
    argv: ReadonlyArray<string>,
    env: Readonly<Record<string, string | undefined>>,
    cwd: string
  ) => PosixChild | undefined
}

/** glibc's flags (spawn.h): reset these signals to default, set the mask, `setsid()` in the child. */
const POSIX_SPAWN_SETSIGDEF = 0x04
const POSIX_SPAWN_SETSIGMASK = 0x08
const POSIX_SPAWN_SETSID = 0x80
/** Sizes of glibc's opaque types on 64-bit Linux, with room to spare (they are 80, 336 and 128 bytes). */
const FILE_ACTIONS_BYTES = 128
const ATTR_BYTES = 512
const SIGSET_BYTES = 128
const AF_UNIX = 1
const SOCK_STREAM = 1
const SOCK_CLOEXEC = 0o2000000
const WNOHANG = 1
const ECHILD = 10
const EINTR = 4

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(os.constants.signals).map(([name, n]) => [n, name as NodeJS.Signals])
)

/** `waitpid`'s status, decoded as `WIFEXITED` / `WTERMSIG` do. */
const decode = (status: number): { code: number | null; signal: NodeJS.Signals | null } => {
  const termsig = status & 0x7f
  if (termsig === 0) return { code: (status >> 8) & 0xff, signal: null }
  return { code: null, signal: signalNames.get(termsig) ?? null }
}

class Child extends EventEmitter implements PosixChild {
  /** The exit status once reaped, and how many of stdout and stderr are still open. */
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined
  private open = 2
  constructor(
    readonly pid: number,
    readonly stdin: net.Socket,
    readonly stdout: net.Socket,
    readonly stderr: net.Socket
  ) {
    super()
    const closed = () => {
      this.open--
      this.maybeClose()
    }
    stdout.once("close", closed)
    stderr.once("close", closed)
  }
  reaped(status: number): void {
    this.exited = decode(status)
    this.emit("exit", this.exited.code, this.exited.signal)
    this.maybeClose()
  }
  private maybeClose(): void {
    if (this.exited !== undefined && this.open === 0) this.emit("close", this.exited.code, this.exited.signal)
  }
}

/** Binds the C functions, or `undefined` where they are not all there (see the module header). */
export const load = async (): Promise<Spawner | undefined> => {
  if (process.platform !== "linux") return undefined
  try {
    const koffi = (await import("koffi")).default
    const libc = koffi.load("libc.so.6")
    const c = {
      spawn: libc.func(
        "int posix_spawn(_Out_ int *pid, const char *path, void *actions, void *attr, const char **argv, const char **envp)"
      ),
      actionsInit: libc.func("int posix_spawn_file_actions_init(void *actions)"),
      actionsDestroy: libc.func("int posix_spawn_file_actions_destroy(void *actions)"),
      dup2: libc.func("int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)"),
      chdir: libc.func("int posix_spawn_file_actions_addchdir_np(void *actions, const char *path)"),
      attrInit: libc.func("int posix_spawnattr_init(void *attr)"),
      attrDestroy: libc.func("int posix_spawnattr_destroy(void *attr)"),
      setFlags: libc.func("int posix_spawnattr_setflags(void *attr, short flags)"),
      setSigDefault: libc.func("int posix_spawnattr_setsigdefault(void *attr, void *set)"),
      setSigMask: libc.func("int posix_spawnattr_setsigmask(void *attr, void *set)"),
      sigemptyset: libc.func("int sigemptyset(void *set)"),
      socketpair: libc.func("int socketpair(int domain, int type, int protocol, void *sv)"),
      waitpid: libc.func("int waitpid(int pid, _Out_ int *status, int options)"),
      errno: () => koffi.errno()
    }
    // Made once: every signal to its default in the child, none blocked. Signals 1–64 set bit by bit: `sigfillset`
    // leaves out glibc's two internal ones (32, 33), which posix_spawn then sets to SIG_IGN in the child, and an
    // exec keeps ignored; libuv's children start with every signal at its default.
    const attr = Buffer.alloc(ATTR_BYTES)
    const all = Buffer.alloc(SIGSET_BYTES)
    all.fill(0xff, 0, 8)
    const none = Buffer.alloc(SIGSET_BYTES)
    if (c.attrInit(attr) !== 0 || c.sigemptyset(none) !== 0) return undefined
    if (
      c.setSigDefault(attr, all) !== 0 ||
      c.setSigMask(attr, none) !== 0 ||
      c.setFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID) !== 0
    ) {
      c.attrDestroy(attr)
      return undefined
    }
    return make(c, attr)
  } catch {
    return undefined
  }
}

interface C {
  readonly spawn: (
    pid: Array<number>,
    path: string,
    actions: Buffer,
    attr: Buffer,
    argv: Array<string | null>,
    envp: Array<string | null>
  ) => number
  readonly actionsInit: (actions: Buffer) => number
  readonly actionsDestroy: (actions: Buffer) => number
  readonly dup2: (actions: Buffer, fd: number, newfd: number) => number
  readonly chdir: (actions: Buffer, path: string) => number
  readonly socketpair: (domain: number, type: number, protocol: number, sv: Buffer) => number
  readonly waitpid: (pid: number, status: Array<number>, options: number) => number
  readonly errno: () => number
}

const make = (c: C, attr: Buffer): Spawner => {
  /** Children started here and not yet reaped. */
  const running = new Map<number, Child>()
  /** Keeps the event loop alive and looks again once a second while any child runs (a signal handler does not). */
  let keepAlive: NodeJS.Timeout | undefined
  const status: Array<number> = [0]

  const reap = () => {
    for (const [pid, child] of running) {
      let r: number
      do r = c.waitpid(pid, status, WNOHANG)
      while (r === -1 && c.errno() === EINTR)
      if (r === pid) {
        running.delete(pid)
        child.reaped(status[0]!)
      } else if (r === -1 && c.errno() === ECHILD) {
        // Reaped by someone else (nothing here calls waitpid(-1)): its status is lost; say it failed.
        running.delete(pid)
        child.reaped(255 << 8)
      }
    }
    if (running.size === 0 && keepAlive !== undefined) {
      clearInterval(keepAlive)
      keepAlive = undefined
    }
  }
  let listening = false

  const pair = (): [number, number] | undefined => {
    const fds = Buffer.alloc(8)
    if (c.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) !== 0) return undefined
    return [fds.readInt32LE(0), fds.readInt32LE(4)]
  }

  const spawn: Spawner["spawn"] = (file, argv, env, cwd) => {
    const words: Array<string | null> = [...argv]
    const vars: Array<string | null> = []
    for (const [name, value] of Object.entries(env)) if (value !== undefined) vars.push(`${name}=${value}`)
    // A C string ends at its first NUL: Node refuses such a word, with its error; that is the one to give.
    if (file.includes("\0") || cwd.includes("\0") || words.some((w) => w!.includes("\0"))) return undefined
    if (vars.some((v) => v!.includes("\0"))) return undefined
    words.push(null)
    vars.push(null)
    const opened: Array<number> = []
    const closeAll = () => {
      for (const fd of opened) fs.closeSync(fd)
    }
    // [parent's end, child's end] for stdin, stdout, stderr.
    const ends: Array<[number, number]> = []
    for (let i = 0; i < 3; i++) {
      const p = pair()
      if (p === undefined) {
        closeAll()
        return undefined
      }
      opened.push(...p)
      ends.push(p)
    }
    // dup2 onto 0–2 clears close-on-exec only when the numbers differ; with the agent's own 0–2 open they do.
    if (ends.some(([, child]) => child <= 2)) {
      closeAll()
      return undefined
    }
    const actions = Buffer.alloc(FILE_ACTIONS_BYTES)
    if (c.actionsInit(actions) !== 0) {
      closeAll()
      return undefined
    }
    const pid: Array<number> = [0]
    let result: number
    try {
      result =
        c.dup2(actions, ends[0]![1], 0) ||
        c.dup2(actions, ends[1]![1], 1) ||
        c.dup2(actions, ends[2]![1], 2) ||
        c.chdir(actions, cwd) ||
        c.spawn(pid, file, actions, attr, words, vars)
    } finally {
      c.actionsDestroy(actions)
    }
    for (const [, child] of ends) fs.closeSync(child)
    if (result !== 0 || !(pid[0]! > 0)) {
      // The program did not start (posix_spawn reports a failed exec: ENOENT, EACCES, ENOEXEC…).
      for (const [parent] of ends) fs.closeSync(parent)
      return undefined
    }
    const child = new Child(
      pid[0]!,
      new net.Socket({ fd: ends[0]![0], readable: false, writable: true }),
      new net.Socket({ fd: ends[1]![0], readable: true, writable: false }),
      new net.Socket({ fd: ends[2]![0], readable: true, writable: false })
    )
    running.set(child.pid, child)
    if (!listening) {
      listening = true
      process.on("SIGCHLD", reap)
    }
    keepAlive ??= setInterval(reap, 1000)
    return child
  }

  return { spawn }
}
