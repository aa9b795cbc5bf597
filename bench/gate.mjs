// The gate's cost per exec, as the agent pays it before anything runs: the decision under a parsed
// permissions.yaml plus its `gate` line appended to a real audit.log (file-backed AuditLog, one O_APPEND write).
// Bundles packages/agent/src/Gate.ts with esbuild (a root devDependency), then times `Gate.check` in a loop.
// Run: node bench/gate.mjs [iterations] [--json]; the target is p50 < 0.5 ms.
import { build } from "esbuild"
import { mkdtempSync, writeFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, dirname } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const out = await build({
  stdin: {
    contents: [
      `export * as Gate from "./packages/agent/src/Gate.ts"`,
      `export * as AuditLog from "./packages/agent/src/AuditLog.ts"`,
      `export * as PolicyStore from "./packages/gate/src/PolicyStore.ts"`,
      `export { parsePolicy } from "./packages/gate/src/PolicyFile.ts"`,
      `export { warmUp } from "./packages/gate/src/Reader.ts"`,
      `export { Effect, Scope } from "effect"`,
      `export { NodeFileSystem } from "@effect/platform-node"`
    ].join("\n"),
    resolveDir: root,
    loader: "ts"
  },
  bundle: true,
  platform: "node",
  format: "esm",
  write: false,
  nodePaths: [join(root, "packages/agent/node_modules"), join(root, "packages/gate/node_modules")],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: "error"
})
const dir = mkdtempSync(join(tmpdir(), "gate-bench-"))
const file = join(dir, "gate.mjs")
writeFileSync(file, out.outputFiles[0].text)
const { Gate, AuditLog, PolicyStore, parsePolicy, warmUp, Effect, Scope, NodeFileSystem } = await import(
  pathToFileURL(file).href
)

const policy = parsePolicy(
  `default: {key: allow, user: allow, guest: deny}
rules:
  - {action: allow, caller: guest, mode: exec, command: ["uptime", "ls *", "journalctl -u nginx *", "git *", "head *"]}
  - {action: ask, caller: guest, command: "systemctl restart *"}
  - {action: deny, user: "*@contractor.example", mode: shell}
  - {action: deny, caller: guest, command: ["rm *", "curl *", "wget *"]}
`,
  "permissions.yaml"
).right
const gate = await Effect.runPromise(
  Effect.gen(function* () {
    yield* warmUp
    const auditLog = yield* AuditLog.makeFile(join(dir, "audit.log"))
    return yield* Gate.make({ auditLog }).pipe(Effect.provide(PolicyStore.layerFixed(policy)))
  }).pipe(
    Effect.provide(NodeFileSystem.layer),
    Effect.provideService(Scope.Scope, await Effect.runPromise(Scope.make()))
  )
)
const guest = { kind: "guest", principal: "shr_1", shareId: "shr_1" }
const cases = {
  "argv allow": { argv: ["journalctl", "-u", "nginx", "--since", "1 hour ago"] },
  "argv deny": { argv: ["cat", "/etc/shadow"] },
  "sh -c line": { argv: ["sh", "-c", "git status && ls -la /var/log | head -n 5; uptime"] }
}
const n = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 3000)
const results = {}
for (const [name, c] of Object.entries(cases)) {
  const check = (i) =>
    Effect.runPromise(gate.check({ sessionId: `s${i}`, caller: guest, mode: "exec", ...c }, () => Effect.void))
  for (let i = 0; i < 200; i++) await check(i)
  const times = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const s = performance.now()
    await check(i)
    times[i] = performance.now() - s
  }
  times.sort()
  const ms = (q) => times[Math.min(n - 1, Math.floor(q * n))]
  results[name] = { p50_ms: ms(0.5), p99_ms: ms(0.99), n }
}
rmSync(dir, { recursive: true })
if (process.argv.includes("--json")) console.log(JSON.stringify(results, null, 2))
else {
  console.log("gate per exec (decision + audit line), target p50 < 0.5 ms")
  for (const [name, r] of Object.entries(results))
    console.log(`${name.padEnd(12)} p50 ${r.p50_ms.toFixed(3)} ms  p99 ${r.p99_ms.toFixed(3)} ms  (n=${r.n})`)
}
