// Summarises a `.cpuprofile` (node --cpu-prof): self time by area (Effect, grpc-js, Node internals, GC, idle, …)
// and the top functions by self time. `node bench/cpuprof-top.mjs <file.cpuprofile> [top=15]`.
import { readFileSync } from "node:fs"

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

// The bundle keeps esbuild's `// node_modules/...` markers out of the profile, so areas come from function names
// and URLs: Node internals have `node:` URLs; the rest is attributed by the source file of the function.
const areaOf = (frame) => {
  const { url, functionName } = frame
  if (functionName === "(garbage collector)") return "GC"
  if (functionName === "(idle)") return "idle"
  if (functionName === "(program)") return "program"
  if (url.startsWith("node:")) return "node internals"
  if (url === "") return "native/other"
  return "bundle"
}

const byArea = new Map()
const byFunction = new Map()
let total = 0
for (const node of profile.nodes) {
  const us = selfUs.get(node.id)
  if (!us) continue
  total += us
  const frame = node.callFrame
  const area = areaOf(frame)
  byArea.set(area, (byArea.get(area) ?? 0) + us)
  const key = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}:${frame.lineNumber + 1}`
  byFunction.set(key, (byFunction.get(key) ?? 0) + us)
}
const pct = (us) => `${((100 * us) / total).toFixed(1)}%`
process.stdout.write(`${file}: ${(total / 1000).toFixed(0)} ms sampled\n`)
for (const [area, us] of [...byArea].sort((a, b) => b[1] - a[1]))
  process.stdout.write(`  ${area.padEnd(16)} ${pct(us).padStart(6)}\n`)
process.stdout.write(`top ${top} functions by self time:\n`)
for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
  process.stdout.write(`  ${pct(us).padStart(6)}  ${key}\n`)
