// Decision cost of the gate: p50/p99 microseconds per decision for an argv, a shell line and a nested `sh -c`.
// Bundles packages/gate/src with esbuild (a root devDependency), then times `decide` in a loop.
// Run: node packages/gate/bench/decide.mjs [iterations]
import { build } from "esbuild"
import { mkdtempSync, writeFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, dirname } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const out = await build({
  stdin: {
    contents: `export { decide } from "./src/Decide.ts"; export { parsePolicy } from "./src/PolicyFile.ts"; export { warmUp } from "./src/Reader.ts"; export { Effect } from "effect"`,
    resolveDir: join(here, ".."),
    loader: "ts"
  },
  bundle: true,
  platform: "node",
  format: "esm",
  write: false,
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: "error"
})
const dir = mkdtempSync(join(tmpdir(), "gate-bench-"))
const file = join(dir, "gate.mjs")
writeFileSync(file, out.outputFiles[0].text)
const { decide, parsePolicy, warmUp, Effect } = await import(pathToFileURL(file).href)
rmSync(dir, { recursive: true })

const t0 = performance.now()
await Effect.runPromise(warmUp)
const loadMs = performance.now() - t0

const policy = parsePolicy(
  `default: {key: allow, user: allow, guest: deny}
rules:
  - {action: allow, caller: guest, mode: exec, command: ["uptime", "ls *", "journalctl -u nginx *", "git *", "head *", "echo *"]}
  - {action: ask, caller: guest, command: "systemctl restart *"}
  - {action: deny, user: "*@contractor.example", mode: shell}
  - {action: deny, caller: guest, command: ["rm *", "curl *", "wget *"]}
`,
  "permissions.yaml"
).right
const guest = { kind: "guest", shareId: "shr_1" }
const cases = {
  argv: { caller: guest, mode: "exec", argv: ["journalctl", "-u", "nginx", "--since", "1 hour ago"] },
  "shell line": {
    caller: guest,
    mode: "exec",
    argv: ["git status && ls -la /var/log | head -n 5; uptime"],
    shell: true
  },
  "sh -c argv": { caller: guest, mode: "exec", argv: ["bash", "-lc", "git log --oneline -n 3 $(echo HEAD)"] }
}
const n = Number(process.argv[2] ?? 5000)
console.log(`parser load ${loadMs.toFixed(1)} ms (once per process)`)
for (const [name, request] of Object.entries(cases)) {
  for (let i = 0; i < 500; i++) decide(policy, request)
  const times = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const s = performance.now()
    decide(policy, request)
    times[i] = performance.now() - s
  }
  times.sort()
  const us = (q) => (times[Math.min(n - 1, Math.floor(q * n))] * 1000).toFixed(1)
  console.log(`${name.padEnd(11)} p50 ${us(0.5)} µs  p99 ${us(0.99)} µs  (${decide(policy, request).action}, n=${n})`)
}
