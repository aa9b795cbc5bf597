// Regenerates packages/protocol/src/generated from proto/ with buf + ts-proto (both from the npm registry).
// The generated code is committed, so a fresh clone builds without running this.
import { execFileSync } from "node:child_process"
import { rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
rmSync(join(root, "packages/protocol/src/generated"), { recursive: true, force: true })
execFileSync(join(root, "node_modules/.bin/buf"), ["generate"], { cwd: root, stdio: "inherit" })
