// Starting one command three ways (bench/spawn.ts): fork, warm shell, posix_spawn. Bundles it next to the node
// package (so koffi, which it leaves external, resolves) and runs it:
//   node bench/spawn.mjs [commands per round=300] [rounds=3]
// Each command comes 3 ms after the last one ended (an agent's calls); `GAP=0` runs them back to back.
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { bundleTools } from "./bundleTools.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const out = mkdtempSync(join(root, "packages", "node", ".bench-"))
try {
  await bundleTools({
    entryPoints: { spawn: "bench/spawn.ts" },
    outdir: out,
    packages: ["node", "agent"],
    external: ["koffi"],
    logLevel: "error"
  })
  const r = spawnSync(process.execPath, [join(out, "spawn.mjs"), ...process.argv.slice(2)], { encoding: "utf8" })
  process.stdout.write(r.status === 0 ? r.stdout : `failed: ${r.stderr}\n`)
  process.exitCode = r.status ?? 1
} finally {
  rmSync(out, { recursive: true, force: true })
}
