/**
 * The floor: commands no rule can open, whatever the caller and the policy (and also when there is no policy
 * file). Checked on every command the gate reads, looking through wrappers (`sudo`, `env`, `xargs`, …), and on
 * every file a shell line redirects into.
 */
import type { ArgWord } from "./CommandPattern.js"
import { allCommands, basename } from "./Wrappers.js"

/** One entry of the floor, as listed in the docs and in `explain`. */
export interface FloorEntry {
  readonly name: string
  readonly description: string
}

export const FLOOR: ReadonlyArray<FloorEntry> = [
  { name: "rm-root", description: "rm -r of / or /* (any spelling: -rf, -fr, --recursive, --no-preserve-root)" },
  { name: "find-root-delete", description: "find / -delete" },
  { name: "mkfs", description: "making a filesystem: mkfs, mkfs.*, mke2fs, mkswap, wipefs" },
  {
    name: "disk-write",
    description: "writing a whole disk: dd of=/dev/sd*|nvme*|vd*|hd*|xvd*|mmcblk*, > /dev/sda, tee/shred/cp onto one"
  },
  { name: "chmod-root", description: "chmod, chown or chgrp -R on /" },
  { name: "fork-bomb", description: "a shell function that runs itself in a pipe or in the background (:(){ :|:& };:)" }
]

/** A floor hit: which entry and the command that hit it. */
export interface FloorHit {
  readonly name: string
  readonly text: string
}

const DISK = /^\/dev\/(sd[a-z]|nvme\d|vd[a-z]|hd[a-z]|xvd[a-z]|mmcblk\d|disk\d|mapper\/)/

/** Whether a path names a raw disk device. */
export const isDisk = (path: string): boolean => DISK.test(path)

/** `/`, `//`, `/.`, `/./`, `/..`, `/*` and friends: the root or everything in it. */
const isRoot = (path: string): boolean => {
  const segments = path.split("/").filter((s) => s !== "" && s !== "." && s !== "..")
  return path.startsWith("/") && (segments.length === 0 || (segments.length === 1 && segments[0] === "*"))
}

const flags = (words: ReadonlyArray<string>) => {
  const long = new Set(words.filter((w) => w.startsWith("--")))
  const short = new Set(words.filter((w) => /^-[A-Za-z]+$/.test(w)).flatMap((w) => [...w.slice(1)]))
  return { long, short }
}

const operands = (words: ReadonlyArray<string>) => words.filter((w) => !w.startsWith("-"))

const checkOne = (argv: ReadonlyArray<string>): string | undefined => {
  const name = basename(argv[0] ?? "")
  const args = argv.slice(1)
  const { long, short } = flags(args)
  switch (name) {
    case "rm": {
      const recursive = short.has("r") || short.has("R") || long.has("--recursive")
      if (long.has("--no-preserve-root") || (recursive && operands(args).some(isRoot))) return "rm-root"
      return undefined
    }
    case "find":
      return args.includes("-delete") && operands(args.slice(0, 1)).some(isRoot) ? "find-root-delete" : undefined
    case "mke2fs":
    case "mkswap":
    case "wipefs":
      return "mkfs"
    case "dd":
      return args.some((a) => a.startsWith("of=") && isDisk(a.slice(3))) ? "disk-write" : undefined
    case "tee":
    case "shred":
    case "cp":
      return operands(args).some(isDisk) ? "disk-write" : undefined
    case "chmod":
    case "chown":
    case "chgrp":
      return (short.has("R") || long.has("--recursive")) && operands(args).some(isRoot) ? "chmod-root" : undefined
    default:
      return name.startsWith("mkfs") ? "mkfs" : undefined
  }
}

/** Floor hits for one command, looking through wrappers. Words the gate cannot read are skipped. */
export const checkCommand = (argv: ReadonlyArray<ArgWord>): ReadonlyArray<FloorHit> => {
  const hits: Array<FloorHit> = []
  for (const command of allCommands(argv)) {
    const known = command.filter((w) => w.known).map((w) => w.text)
    const name = checkOne(known)
    if (name !== undefined) hits.push({ name, text: command.map((w) => w.text).join(" ") })
  }
  return hits
}

/** A floor hit for a redirection that writes onto a raw disk (`> /dev/sda`). */
export const checkRedirect = (target: string, op: string): FloorHit | undefined =>
  isDisk(target) ? { name: "disk-write", text: `${op} ${target}` } : undefined
