/**
 * Runs before every test file of every project (a setup file is re-run per file, even in a reused worker).
 *
 * @effect/vitest 0.30's `layer(...)` installs its own `effect`, `scoped`, `prop`, `layer` and `flakyTest` on Vitest's
 * shared `it` object, and never puts the defaults back (fixed in Effect 4's @effect/vitest, effect-smol#2177). With
 * `isolate: false` a worker runs many files in one process, so a file that follows one using
 * `layer(…, { excludeTestServices: true })` got an `it.effect` without the TestClock ("testClock.adjust is not a
 * function"). Reinstalling the default methods here gives each file the `it` it would get in a fresh process.
 */
import { it, makeMethods } from "@effect/vitest"

makeMethods(it)
