// The agent's exec output path alone (bench/agent-alone.ts): bundles it next to the agent package (so its native
// dependencies resolve), runs it AGENT_ROUNDS times (default 3) and prints each run's JSON line: bytes, messages,
// CPU ms per MB, MB/s. `node bench/agent-alone.mjs [BYTES]`; AGENT_CPU_PROF=<dir> runs with `node --cpu-prof`;
// AGENT_NODE_ARGS="--flag …" runs it with those node/V8 flags (e.g. the daemon's, from src/boot.ts).
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { bundleTools } from "./bundleTools.mjs"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const bytes = process.argv[2] ?? String(256 * 1024 * 1024)
const rounds = Number(process.env.AGENT_ROUNDS || 3)
const profDir = process.env.AGENT_CPU_PROF || undefined
const nodeArgs = (process.env.AGENT_NODE_ARGS ?? "").split(" ").filter((a) => a !== "")
const out = mkdtempSync(join(root, "packages", "agent", ".bench-"))
try {
  await bundleTools({
    entryPoints: { "agent-alone": "bench/agent-alone.ts" },
    outdir: out,
    packages: ["cli", "agent"],
    external: ["@lydell/node-pty"],
    logLevel: "error"
  })
  for (let i = 0; i < rounds; i++) {
    const prof = profDir ? ["--cpu-prof", "--cpu-prof-dir", profDir] : []
    const r = spawnSync(process.execPath, [...nodeArgs, ...prof, join(out, "agent-alone.mjs"), bytes], {
      encoding: "utf8"
    })
    process.stdout.write(r.status === 0 ? r.stdout : `run ${i + 1} failed: ${r.stderr}\n`)
  }
} finally {
  rmSync(out, { recursive: true, force: true })
}
