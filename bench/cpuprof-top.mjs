// Summarises a `.cpuprofile` (node --cpu-prof): self time by area (Effect, grpc-js, Node internals, GC, idle, …)
// and the top modules and functions by self time. `node bench/cpuprof-top.mjs <file.cpuprofile> [top=15]`.
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const [file, topArg] = process.argv.slice(2)
if (file === undefined) {
  process.stderr.write("usage: node bench/cpuprof-top.mjs <file.cpuprofile> [top]\n")
  process.exit(2)
}
const top = Number(topArg || 15)
const profile = JSON.parse(readFileSync(file, "utf8"))

const selfUs = new Map()
const deltaOf = new Map()
for (let i = 0; i < profile.samples.length; i++)
  deltaOf.set(profile.samples[i], (deltaOf.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0))
for (const node of profile.nodes) selfUs.set(node.id, deltaOf.get(node.id) ?? 0)

// Areas: Node internals have `node:` URLs; lines of an esbuild bundle are attributed to the package whose
// `// node_modules/...` (or `// packages/...`, `// bench/...`) marker precedes them.
const bundles = new Map()
const markersOf = (url) => {
  if (!bundles.has(url)) {
    const markers = []
    try {
      const lines = readFileSync(fileURLToPath(url), "utf8").split("\n")
      for (let i = 0; i < lines.length; i++) {
        const m = /^\/\/ (\S+\.(?:m?js|ts))$/.exec(lines[i])
        if (m) markers.push([i, m[1]])
      }
    } catch {
      // Not a readable file: attribute to the URL itself.
    }
    bundles.set(url, markers)
  }
  return bundles.get(url)
}
const packageOf = (path) => {
  const nm = path.lastIndexOf("node_modules/")
  if (nm >= 0) {
    const rest = path.slice(nm + "node_modules/".length).split("/")
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  return path.split("/").slice(0, 2).join("/")
}
const areaOf = (frame) => {
  const { url, functionName, lineNumber } = frame
  if (functionName === "(garbage collector)") return "GC"
  if (functionName === "(idle)") return "idle"
  if (functionName === "(program)") return "program"
  if (url.startsWith("node:")) return "node internals"
  if (!url.startsWith("file:")) return "native/other"
  const markers = markersOf(url)
  let found = "bundle"
  for (const [line, path] of markers) {
    if (line > lineNumber) break
    found = path
  }
  return found
}

const byArea = new Map()
const byModule = new Map()
const byFunction = new Map()
let total = 0
for (const node of profile.nodes) {
  const us = selfUs.get(node.id)
  if (!us) continue
  total += us
  const frame = node.callFrame
  const module = areaOf(frame)
  byModule.set(module, (byModule.get(module) ?? 0) + us)
  const area = module.includes("/") ? packageOf(module) : module
  byArea.set(area, (byArea.get(area) ?? 0) + us)
  const key = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}:${frame.lineNumber + 1}`
  byFunction.set(key, (byFunction.get(key) ?? 0) + us)
}
const pct = (us) => `${((100 * us) / total).toFixed(1)}%`
process.stdout.write(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n`)
for (const [area, us] of [...byArea].sort((a, b) => b[1] - a[1]))
  process.stdout.write(`  ${area.padEnd(16)} ${pct(us).padStart(6)}\n`)
process.stdout.write(`top ${top} modules by self time:\n`)
for (const [module, us] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, top))
  process.stdout.write(`  ${pct(us).padStart(6)}  ${module.replace(/^.*node_modules\//, "")}\n`)
process.stdout.write(`top ${top} functions by self time:\n`)
for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
  process.stdout.write(`  ${pct(us).padStart(6)}  ${key}\n`)
