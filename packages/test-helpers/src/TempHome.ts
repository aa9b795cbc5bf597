/**
 * A scoped temporary `HOME` directory, removed when the scope closes.
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export const make = (prefix = "cmdop-home-") =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    // Retries: a shell killed with its agent may still write its history into the home while we remove it.
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }))
  )
