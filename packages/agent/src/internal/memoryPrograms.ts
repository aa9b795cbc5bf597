/**
 * The programs the in-memory process runner knows (`ProcessRunnerMemory.ts`): small deterministic versions of the
 * commands tests and embedded programs run, each an Effect over an {@link Io} instead of a process over pipes.
 * They behave like their coreutils namesakes for the options listed here and say plainly when asked for more.
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

/** What a program sees instead of a process: its arguments, environment, stdin, and its two output pipes. */
export interface Io {
  /** The name it was started as (`argv[0]`, path removed). */
  readonly name: string
  /** `argv[1…]`. */
  readonly args: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  readonly cwd: string
  /** The process's pid (`$$` in the shell). */
  readonly pid: number
  /** The next piece of stdin, or none at end-of-file. */
  readonly read: Effect.Effect<Option.Option<Uint8Array>>
  /** Writes to stdout; waits while the reader is behind (backpressure). */
  readonly stdout: (data: Uint8Array | string) => Effect.Effect<void>
  readonly stderr: (data: Uint8Array | string) => Effect.Effect<void>
  /** Finds another program by name (for `env CMD` and the shell). */
  readonly lookup: (name: string) => Program | undefined
  /** The text of a file of the in-memory machine (relative to `cwd`), or undefined when there is none. */
  readonly file: (path: string) => string | undefined
}

/** The program sent itself a signal (`kill -TERM $$`): the process ends as if killed by it. */
export class Signalled extends Data.TaggedError("Signalled")<{ readonly signal: NodeJS.Signals }> {}

/** A program: runs over `io` and answers its exit status. Interrupting it is delivering a signal. */
export type Program = (io: Io) => Effect.Effect<number, Signalled>

const encoder = new TextEncoder()

/** Every piece of stdin until end-of-file, in order. */
export const readAll = (io: Io): Effect.Effect<Uint8Array> =>
  Effect.gen(function* () {
    const parts: Array<Uint8Array> = []
    while (true) {
      const next = yield* io.read
      if (Option.isNone(next)) return Buffer.concat(parts)
      parts.push(next.value)
    }
  })

/** `cmd: message` on stderr, then `status`. */
const fail = (io: Io, message: string, status = 1) => Effect.as(io.stderr(`${io.name}: ${message}\n`), status)

/** `echo [-n] ARG…`: the arguments joined by spaces; escapes are not interpreted (bash's builtin does the same). */
const echo: Program = (io) => {
  const noNewline = io.args[0] === "-n"
  const words = noNewline ? io.args.slice(1) : io.args
  return Effect.as(io.stdout(words.join(" ") + (noNewline ? "" : "\n")), 0)
}

const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", '"': '"', a: "\x07", "0": "\0" }

/**
 * `printf FORMAT [ARG…]` with `%s`, `%d`/`%i`, `%%` and the backslash escapes `\n \t \r \\ \" \a \0`; the format
 * is reused while arguments remain, as POSIX printf does.
 */
const printf: Program = (io) =>
  Effect.gen(function* () {
    const [format, ...args] = io.args
    if (format === undefined) return yield* fail(io, "missing operand")
    let out = ""
    let used = 0
    do {
      let consumed = false
      for (let i = 0; i < format.length; i++) {
        const c = format[i]!
        if (c === "\\" && i + 1 < format.length) {
          const next = format[++i]!
          out += ESCAPES[next] ?? `\\${next}`
        } else if (c === "%" && i + 1 < format.length) {
          const conversion = format[++i]!
          if (conversion === "%") {
            out += "%"
            continue
          }
          const arg = args[used++] ?? ""
          consumed = true
          if (conversion === "s") out += arg
          else if (conversion === "d" || conversion === "i") {
            const n = arg === "" ? 0 : Number(arg)
            if (!Number.isInteger(n)) {
              yield* io.stdout(out)
              return yield* fail(io, `'${arg}': expected a numeric value`)
            }
            out += String(n)
          } else return yield* fail(io, `%${conversion}: conversion not supported in memory (%s %d %i %%)`)
        } else out += c
      }
      if (!consumed) break
    } while (used < args.length)
    yield* io.stdout(out)
    return 0
  })

/** `cat [FILE|-]…`: the machine's files and stdin to stdout, stdin piece by piece. */
const cat: Program = (io) =>
  Effect.gen(function* () {
    let status = 0
    for (const operand of io.args.length === 0 ? ["-"] : io.args) {
      if (operand === "-") {
        while (true) {
          const next = yield* io.read
          if (Option.isNone(next)) break
          yield* io.stdout(next.value)
        }
      } else {
        const text = io.file(operand)
        if (text === undefined) status = yield* fail(io, `${operand}: No such file or directory`)
        else yield* io.stdout(text)
      }
    }
    return status
  })

/** The lines of the operands (files of the machine, `-` or none: stdin); undefined after reporting a missing file. */
const inputLines = (io: Io, operands: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    let text = ""
    for (const operand of operands.length === 0 ? ["-"] : operands) {
      const content = operand === "-" ? Buffer.from(yield* readAll(io)).toString("utf8") : io.file(operand)
      if (content === undefined) {
        yield* io.stderr(`${io.name}: ${operand}: No such file or directory\n`)
        return undefined
      }
      text += content
    }
    const lines = text.split("\n")
    if (lines[lines.length - 1] === "") lines.pop()
    return lines
  })

/** `grep [-qvci] PATTERN [FILE…]`: lines matching the (JavaScript) regular expression; 0 found, 1 none, 2 error. */
const grep: Program = (io) =>
  Effect.gen(function* () {
    const flags = new Set<string>()
    let i = 0
    for (; i < io.args.length && /^-[qvci]+$/.test(io.args[i]!); i++) for (const f of io.args[i]!.slice(1)) flags.add(f)
    const pattern = io.args[i]
    if (pattern === undefined) return yield* fail(io, "usage: grep [-qvci] PATTERN [FILE…] (in memory)", 2)
    const regex = yield* Effect.try(() => new RegExp(pattern, flags.has("i") ? "i" : "")).pipe(Effect.option)
    if (Option.isNone(regex)) return yield* fail(io, `invalid pattern: ${pattern}`, 2)
    const lines = yield* inputLines(io, io.args.slice(i + 1))
    if (lines === undefined) return 2
    const found = lines.filter((line) => regex.value.test(line) !== flags.has("v"))
    if (flags.has("c")) yield* io.stdout(`${found.length}\n`)
    else if (!flags.has("q")) yield* io.stdout(found.map((l) => l + "\n").join(""))
    return found.length > 0 ? 0 : 1
  })

/** `sort [-r] [-n] [-k N] [FILE…]`: lines ordered by the whole line or from field N on (blank-separated). */
const sort: Program = (io) =>
  Effect.gen(function* () {
    let reverse = false
    let numeric = false
    let key = 0
    const operands: Array<string> = []
    for (let i = 0; i < io.args.length; i++) {
      const arg = io.args[i]!
      if (arg === "-k") key = Number(io.args[++i]) - 1
      else if (/^-[rn]+$/.test(arg)) [reverse, numeric] = [reverse || arg.includes("r"), numeric || arg.includes("n")]
      else if (arg.startsWith("-") && arg !== "-") return yield* fail(io, `${arg}: only -r, -n and -k N in memory`, 2)
      else operands.push(arg)
    }
    if (!Number.isInteger(key) || key < 0) return yield* fail(io, "-k needs a field number from 1", 2)
    const lines = yield* inputLines(io, operands)
    if (lines === undefined) return 2
    const field = (line: string) => line.trim().split(/\s+/).slice(key).join(" ")
    const compare = (a: string, b: string) =>
      numeric
        ? parseFloat(field(a) || "0") - parseFloat(field(b) || "0")
        : field(a) < field(b)
          ? -1
          : field(a) > field(b)
            ? 1
            : 0
    const sorted = [...lines].sort((a, b) => (reverse ? -1 : 1) * (compare(a, b) || (a < b ? -1 : a > b ? 1 : 0)))
    yield* io.stdout(sorted.map((l) => l + "\n").join(""))
    return 0
  })

/** `wc [-c] [-l] [-w]` over stdin, printed as coreutils prints counts of stdin. */
const wc: Program = (io) =>
  Effect.gen(function* () {
    const unknown = io.args.find((a) => !/^-[clw]+$/.test(a))
    if (unknown !== undefined) return yield* fail(io, `${unknown}: only -c, -l and -w over stdin in memory`)
    const flags = io.args.join("")
    const data = yield* readAll(io)
    const text = Buffer.from(data).toString("utf8")
    const counts = [
      ["l", text.split("\n").length - 1],
      ["w", text.split(/\s+/).filter((w) => w !== "").length],
      ["c", data.length]
    ] as const
    const chosen = flags === "" ? counts : counts.filter(([flag]) => flags.includes(flag))
    const line = chosen.length === 1 ? String(chosen[0]![1]) : chosen.map(([, n]) => String(n).padStart(7)).join(" ")
    yield* io.stdout(line + "\n")
    return 0
  })

const UNITS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400 }

/** `sleep N[smhd]…`: waits the sum on the Effect `Clock`, so a `TestClock` drives it. */
const sleep: Program = (io) =>
  Effect.gen(function* () {
    if (io.args.length === 0) return yield* fail(io, "missing operand")
    let seconds = 0
    for (const arg of io.args) {
      const m = /^(\d+(?:\.\d*)?|\.\d+)([smhd]?)$/.exec(arg)
      if (m === null) return yield* fail(io, `invalid time interval '${arg}'`)
      seconds += Number(m[1]) * UNITS[m[2]!]!
    }
    yield* Effect.sleep(Duration.millis(Math.round(seconds * 1000)))
    return 0
  })

/** `env [NAME=VALUE…] [CMD ARG…]`: prints the environment, or runs CMD with the assignments added. */
const env: Program = (io) =>
  Effect.gen(function* () {
    const assigned = { ...io.env }
    let i = 0
    for (; i < io.args.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(io.args[i]!); i++) {
      const arg = io.args[i]!
      const eq = arg.indexOf("=")
      assigned[arg.slice(0, eq)] = arg.slice(eq + 1)
    }
    const [command, ...rest] = io.args.slice(i)
    if (command === undefined) {
      yield* io.stdout(
        Object.entries(assigned)
          .map(([k, v]) => `${k}=${v}\n`)
          .join("")
      )
      return 0
    }
    const program = io.lookup(command)
    if (program === undefined) return yield* fail(io, `'${command}': No such file or directory`, 127)
    return yield* program({ ...io, name: baseName(command), args: rest, env: assigned })
  })

/** `yes [WORD…]`: the line forever, as fast as the reader takes it. */
const yes: Program = (io) => {
  const line = (io.args.length > 0 ? io.args.join(" ") : "y") + "\n"
  const block = encoder.encode(line.repeat(Math.max(1, Math.floor(8192 / line.length))))
  return Effect.forever(io.stdout(block))
}

/** The built-in programs, by name. The shell (`sh`, `bash`, `dash`) is added by the runner. */
export const builtins: Readonly<Record<string, Program>> = {
  true: () => Effect.succeed(0),
  false: () => Effect.succeed(1),
  echo,
  printf,
  cat,
  grep,
  sort,
  wc,
  sleep,
  env,
  pwd: (io) => Effect.as(io.stdout(`${io.cwd}\n`), 0),
  yes
}

/** `/usr/bin/env` → `env`: programs are found by their last path segment, as on any `PATH`. */
export const baseName = (file: string): string => file.slice(file.lastIndexOf("/") + 1)
