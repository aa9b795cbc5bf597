// Makes a checkout runnable with only Node 20 and npm: installs the workspace with the pinned pnpm (through npx
// when pnpm is not on PATH) whenever the lockfile is newer than the install, then bundles the CLI.
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, statSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const pkg = JSON.parse(await import("node:fs").then((fs) => fs.readFileSync(join(root, "package.json"), "utf8")))
const pnpmVersion = pkg.packageManager.replace(/^pnpm@/, "")

const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0)
const installed = mtime(join(root, "node_modules", ".modules.yaml"))
const stale = installed === 0 || mtime(join(root, "pnpm-lock.yaml")) > installed

const pnpm = () => {
  const probe = spawnSync("pnpm", ["--version"], { encoding: "utf8" })
  if (probe.status === 0 && probe.stdout.trim() === pnpmVersion) return ["pnpm", []]
  return ["npx", ["--yes", `pnpm@${pnpmVersion}`]]
}

if (stale) {
  const [cmd, pre] = pnpm()
  process.stderr.write(`setup: installing dependencies with pnpm ${pnpmVersion}…\n`)
  execFileSync(cmd, [...pre, "install", "--frozen-lockfile"], { cwd: root, stdio: "inherit" })
}
execFileSync(process.execPath, [join(root, "scripts", "build.mjs")], { cwd: root, stdio: "inherit" })
