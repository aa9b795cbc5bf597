import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["packages/*"],
    reporters: ["default"],
    // Two files at a time on a 2-core machine: most tests wait on real processes, sockets and timers, so one worker
    // left a core idle (the suite took 16 min on one worker).
    maxWorkers: 2,
    minWorkers: 1
    // Every package runs its files in shared worker processes (`isolate: false` in each package's config): loading
    // Effect and the package's modules once per worker instead of once per file halves the suite's CPU.
    // `vitest.setup.ts` gives each file the `it` it would get in a fresh process.
  }
})
