// Checks that every workspace package declares exactly what it imports. For each packages/*/package.json:
// - a package imported from src/ must be in `dependencies` (or `peerDependencies`);
// - a package imported only from elsewhere (test/, web/, vitest.config.ts, …) must be in `dependencies` or
//   `devDependencies`;
// - a declared dependency that src/ never imports is unused (or, when only tests import it, a devDependency);
// - a declared devDependency that nothing imports is unused.
// Node built-ins, relative paths and the package's own name are not dependencies. Allowed without an import:
// - a dependency that satisfies a peer dependency of another declared dependency (@effect/cli wants
//   @effect/printer; @effect/sql wants @effect/experimental), since pnpm resolves peers from the package's own;
// - for the CLI, the esbuild externals of its bundle, which load from packages/cli/node_modules at run time.
// Test and config files may also use the workspace root's devDependencies (the shared tooling: vitest, …).
// Exits 1 with one line per finding.
import { builtinModules } from "node:module"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const SKIP_DIRS = new Set(["node_modules", "dist", "build", "coverage"])
const SOURCE = /\.(?:[cm]?[jt]sx?)$/
const builtins = new Set(builtinModules)

/** Every source file under `dir`, recursively. */
const files = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name)
    if (entry.isDirectory()) return SKIP_DIRS.has(entry.name) ? [] : files(full)
    return SOURCE.test(entry.name) && !entry.name.endsWith(".d.ts") ? [full] : []
  })

// Static imports and re-exports (`import … from "x"`, `import "x"`, `export … from "x"`), dynamic `import("x")`
// and `require("x")`. Comments are stripped first so an example in a comment is not an import.
const IMPORT =
  /(?:\bimport\s+(?:type\s+)?(?:[^'"();]*?\s+from\s+)?|\bexport\s+(?:type\s+)?[^'"();]*?\s+from\s+|\bimport\s*\(\s*|\brequire\s*\(\s*)["']([^"']+)["']/g
const stripComments = (text) => text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1")

/** The package an import specifier names, or `undefined` for relative paths and Node built-ins. */
const packageOf = (spec) => {
  if (spec.startsWith(".") || spec.startsWith("/") || spec.startsWith("node:")) return undefined
  const parts = spec.split("/")
  const name = spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]
  return builtins.has(name) ? undefined : name
}

/** The external modules of the CLI bundle (scripts/build.mjs). */
const bundleExternals = () => {
  const match = /external:\s*\[([^\]]*)\]/.exec(readFileSync(join(root, "scripts", "build.mjs"), "utf8"))
  return new Set(match ? [...match[1].matchAll(/"([^"]+)"/g)].map((m) => m[1]) : [])
}

/** The peer dependencies of the packages `dir` declares, as installed in its node_modules. */
const peersOf = (dir, names) =>
  new Set(
    [...names].flatMap((name) => {
      const manifest = join(dir, "node_modules", name, "package.json")
      if (!statSync(manifest, { throwIfNoEntry: false })) return []
      return Object.keys(JSON.parse(readFileSync(manifest, "utf8")).peerDependencies ?? {})
    })
  )

const rootTooling = new Set(Object.keys(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).devDependencies))
const findings = []
const packagesDir = join(root, "packages")
for (const dir of readdirSync(packagesDir).map((d) => join(packagesDir, d))) {
  const manifestPath = join(dir, "package.json")
  if (!statSync(dir).isDirectory() || !statSync(manifestPath, { throwIfNoEntry: false })) continue
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"))
  const deps = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})])
  const devDeps = new Set(Object.keys(manifest.devDependencies ?? {}))
  const usedBySrc = new Map()
  const usedByOther = new Map()
  for (const file of files(dir)) {
    const rel = relative(dir, file)
    const used = rel.startsWith("src/") ? usedBySrc : usedByOther
    for (const m of stripComments(readFileSync(file, "utf8")).matchAll(IMPORT)) {
      const name = packageOf(m[1])
      if (name === undefined || name === manifest.name) continue
      if (!used.has(name)) used.set(name, rel)
    }
  }
  const at = relative(root, manifestPath)
  const report = (text) => findings.push(`${at}: ${text}`)
  for (const [name, file] of usedBySrc)
    if (!deps.has(name))
      report(
        `"${name}" is imported by ${file} but not in dependencies${devDeps.has(name) ? " (only devDependencies)" : ""}`
      )
  for (const [name, file] of usedByOther)
    if (!deps.has(name) && !devDeps.has(name) && !usedBySrc.has(name) && !rootTooling.has(name))
      report(`"${name}" is imported by ${file} but not declared (add it to devDependencies)`)
  const externals = manifest.name === "@cmdop/cli" ? bundleExternals() : new Set()
  const peers = peersOf(dir, [...deps, ...devDeps])
  for (const name of deps) {
    if (usedBySrc.has(name) || externals.has(name) || peers.has(name)) continue
    report(
      usedByOther.has(name)
        ? `"${name}" is a dependency but only ${usedByOther.get(name)} (not src/) imports it: make it a devDependency`
        : `"${name}" is a dependency that nothing imports`
    )
  }
  for (const name of devDeps)
    if (!usedBySrc.has(name) && !usedByOther.has(name) && !name.startsWith("@types/"))
      report(`"${name}" is a devDependency that nothing imports`)
}

if (findings.length > 0) {
  process.stderr.write(`check-deps: ${findings.length} finding(s)\n${findings.map((f) => `  ${f}`).join("\n")}\n`)
  process.exit(1)
}
process.stdout.write("check-deps: every package declares exactly what it imports\n")
