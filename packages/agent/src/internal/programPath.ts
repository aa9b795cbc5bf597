/**
 * The program a command names, found as `execvp` finds it, for the spawns that do not go through libuv's own lookup
 * (a warm shell's `exec`, `posix_spawn`). Conservative: the first candidate on the command's PATH that exists
 * decides, and it must be an executable regular file; anything else (an unreadable or non-executable first match,
 * which `execvp` would skip) answers `undefined`, and the command is spawned the plain way, for its error.
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** The search path `execvp` uses when PATH is unset. */
const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

/** Whether `file` is a regular file this user may execute. */
export const executableFile = (file: string): boolean => {
  try {
    if (!fs.statSync(file).isFile()) return false
    fs.accessSync(file, fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * {@link executableFile}, and for a `#!` script, whether its interpreter is one too (a missing interpreter fails the
 * exec as a missing command would).
 */
export const startable = (file: string, depth = 0): boolean => {
  if (!executableFile(file)) return false
  try {
    const head = Buffer.alloc(256)
    const fd = fs.openSync(file, "r")
    let read: number
    try {
      read = fs.readSync(fd, head, 0, head.length, 0)
    } finally {
      fs.closeSync(fd)
    }
    if (read < 2 || head[0] !== 0x23 || head[1] !== 0x21) return true
    const line = head.subarray(2, read).toString("latin1").split("\n")[0]!.trim()
    const interpreter = line.split(/[ \t]/)[0] ?? ""
    return interpreter.startsWith("/") && depth < 2 && startable(interpreter, depth + 1)
  } catch {
    return false
  }
}

/**
 * Where `execvp` in `cwd` with `PATH=searchPath` finds `file`, when that is a file `accept` takes; `undefined`
 * otherwise.
 */
export const find = (
  file: string,
  searchPath: string | undefined,
  cwd: string,
  accept: (file: string) => boolean = executableFile
): string | undefined => {
  if (file.includes("/")) {
    const candidate = path.resolve(cwd, file)
    return accept(candidate) ? candidate : undefined
  }
  for (const dir of (searchPath ?? DEFAULT_PATH).split(":")) {
    const candidate = path.resolve(cwd, dir === "" ? "." : dir, file)
    if (fs.existsSync(candidate)) return accept(candidate) ? candidate : undefined
  }
  return undefined
}
