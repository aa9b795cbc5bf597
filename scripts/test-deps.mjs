// The full test suite drives a real terminal (tmux) and a real browser (Debian's chromium). Installs them from
// Debian's packages when missing (needs root, as on CI and the project's machines); otherwise says what to install.
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync } from "node:fs"

const needed = [
  { bin: "/usr/bin/tmux", pkg: "tmux" },
  { bin: "/usr/bin/vi", pkg: "vim-tiny" },
  { bin: "/usr/bin/chromium", pkg: "chromium" }
].filter((d) => !existsSync(d.bin))

if (needed.length > 0) {
  const pkgs = needed.map((d) => d.pkg)
  const root = typeof process.getuid === "function" && process.getuid() === 0
  if (!root || spawnSync("apt-get", ["--version"]).status !== 0) {
    process.stderr.write(
      `test-deps: missing ${pkgs.join(", ")}; install them (e.g. sudo apt-get install ${pkgs.join(" ")})\n`
    )
    process.exit(1)
  }
  process.stderr.write(`test-deps: installing ${pkgs.join(", ")} from Debian…\n`)
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env })
  execFileSync("apt-get", ["install", "-y", "-qq", ...pkgs], { stdio: "inherit", env })
}
