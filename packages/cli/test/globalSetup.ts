// Real-process tests run the bundled CLI (bin/cmdop), so build it once before the suite.
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export default function setup() {
  execFileSync(process.execPath, [fileURLToPath(new URL("../../../scripts/build.mjs", import.meta.url))], {
    stdio: "inherit"
  })
}
