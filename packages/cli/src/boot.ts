/**
 * What `dist/cmdop.mjs` runs: loads the CLI's bundle (`dist/cli.cjs`, built from `bin.ts`) with V8's code cache;
 * for the agent daemon (`agent start --foreground` as `AgentStartArgv` takes it) the daemon's own, smaller bundle
 * (`dist/agent.cjs`, from `agentMain.ts`), which hands anything it does not take on back to the whole CLI.
 *
 * Node 20 has no code cache for ES modules (`module.enableCompileCache` is Node 22), and parsing and compiling
 * the bundle was the largest part of a cold `cmdop connect exec`. So the bundle is CommonJS, compiled here with
 * `vm.Script` and the `cachedData` of an earlier run of the same command: V8 then deserialises the bytecode of
 * every function that run compiled instead of parsing the source. A cache is written at exit when there was none
 * (or V8 refused it), one per command (`connect exec`, `agent start`, …) since each compiles different
 * functions, under `dist/cache/<build id>/`, by write-and-rename so concurrent runs never read half a file.
 * Nothing here may fail the CLI: without a cache (read-only install, an old Node) the bundle compiles as usual.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import * as AgentStartArgv from "./AgentStartArgv.js"
import * as CommandTable from "./CommandTable.js"

/** A hash of the bundles' text, set by scripts/build.mjs: a cache is only ever read by the build that wrote it. */
declare const CMDOP_BUILD_ID: string

const dist = dirname(fileURLToPath(import.meta.url))

/** The command words of `argv` that name a command in the table (`connect exec`), joined by "-". */
const commandKey = (args: ReadonlyArray<string>): string => {
  const words: Array<string> = []
  let node: CommandTable.Node | undefined = CommandTable.root
  for (const word of args) {
    node = word.startsWith("-") ? undefined : CommandTable.child(node, word)
    if (node === undefined || words.length === 2) break
    words.push(node.name)
  }
  return words.length === 0 ? "cmdop" : words.join("-")
}

const command = commandKey(process.argv.slice(2))
/** The daemon: its own bundle, a fraction of the CLI's code and memory. */
const daemon = AgentStartArgv.parse(process.argv.slice(2)) !== undefined

// The agent daemon idles between calls: V8's young generation would otherwise grow to 2 × 16 MiB during start-up
// and stay there (a third of an idle agent's RSS). At 1 MiB it stays small; measured: no change in the agent's
// CPU per MB on 3 × 256 MiB transfers. Set before anything is compiled: V8 checks its flags against a cache's.
// Not for `relay serve`: there a young generation held at 2 × 1 MiB (16 MiB less of an idle relay's RSS) made
// the garbage of every handshake and message reach the old generation, and the relay busy with it: three cluster
// nodes taking 4,000 agents used 25–50% more CPU and took 3× as long to take back a dead node's agents
// (bench/README.md, "Agent handshakes under load").
// The long-lived processes (the two daemons, and `up`, which runs both) expose V8's collector to new contexts only:
// HeapTrim collects a burst's last buffers with it before it gives the C heap back.
const v8Flags =
  command === "agent-start"
    ? ["--semi-space-growth-factor=1", "--expose-gc"]
    : command === "relay-serve" || command === "up"
      ? ["--expose-gc"]
      : []
for (const flag of v8Flags) v8.setFlagsFromString(flag)

/** FNV-1a of the things V8 checks a cache against besides the source (its version, its flags). */
const flagsHash = (): string => {
  const text = [process.version, process.arch, ...process.execArgv, process.env["NODE_OPTIONS"] ?? "", ...v8Flags]
  let h = 0x811c9dc5
  for (const c of text.join("\0")) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193)
  return (h >>> 0).toString(16)
}

const cacheDir = join(dist, "cache", CMDOP_BUILD_ID)
const cacheFile = (name: string) => join(cacheDir, `${name}-${flagsHash()}.bin`)

const readCache = (file: string): Buffer | undefined => {
  try {
    return readFileSync(file)
  } catch {
    return undefined
  }
}

const writeCache = (file: string, data: () => Buffer) => {
  try {
    mkdirSync(cacheDir, { recursive: true })
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, data())
    renameSync(tmp, file)
  } catch {
    // A read-only install or a full disk: the next run compiles again.
  }
}

// The build turns every `import()` into `require`; should one remain (a computed specifier in a dependency), it
// resolves as in any module where Node offers that (20.x releases before it would refuse it).
const mainLoader = (vm.constants as Partial<typeof vm.constants> | undefined)?.USE_MAIN_CONTEXT_DEFAULT_LOADER

/**
 * Compiles `file` (`cli.cjs` or `agent.cjs`) with the command's cache, else the build's `base` one for that file
 * (only the top-level code, but it spares V8 parsing the whole file, which costs time and some 20 MiB of memory
 * the process keeps); in a function so that neither the text nor the cache stays reachable after.
 */
const compile = (file: string): vm.Script => {
  const bundle = join(dist, file)
  const prefix = file === "cli.cjs" ? "" : `${file.replace(/\.cjs$/, "")}.`
  const own = cacheFile(`${prefix}${command}`)
  const ownData = readCache(own)
  const cachedData = ownData ?? readCache(cacheFile(`${prefix}base`))
  const script = new vm.Script(
    `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundle, "utf8")}\n})`,
    {
      filename: bundle,
      ...(cachedData === undefined ? {} : { cachedData }),
      ...(mainLoader === undefined ? {} : { importModuleDynamically: mainLoader })
    }
  )
  // scripts/build.mjs writes the base caches: compiled, nothing run. For the daemon also its command's cache once
  // its modules are loaded (agentMain.ts calls back): its first run then compiles next to nothing, which spares
  // the memory the parser leaves behind in malloc's heap (about 10 MiB the idle daemon would keep).
  if (process.env["CMDOP_BOOT_PRIME"] === "1") {
    writeCache(cacheFile(`${prefix}base`), () => script.createCachedData())
    if (file === "cli.cjs") process.exit(0)
    ;(globalThis as Record<symbol, unknown>)[Symbol.for("cmdop.boot.primed")] = () => {
      writeCache(own, () => script.createCachedData())
      process.exit(0)
    }
    return script
  }
  // Compiled functions are only known once the command has run: write the command's cache at exit.
  if (ownData === undefined || script.cachedDataRejected === true)
    process.once("exit", () => writeCache(own, () => script.createCachedData()))
  return script
}

/** Compiles and runs one bundle as a CommonJS module. */
const load = (file: string): void => {
  const bundle = join(dist, file)
  const run = compile(file).runInThisContext() as (...args: ReadonlyArray<unknown>) => void
  const module = { exports: {} }
  run.call(module.exports, module.exports, createRequire(bundle), module, bundle, dist)
}

// agent.cjs calls this for a command line it leaves to the whole CLI (agentMain.ts).
;(globalThis as Record<symbol, unknown>)[Symbol.for("cmdop.boot.fullCli")] = () => load("cli.cjs")

load(daemon ? "agent.cjs" : "cli.cjs")
