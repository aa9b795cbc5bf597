import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["packages/*"],
    reporters: ["default"],
    // Two files at a time on a 2-core machine: most tests wait on real processes, sockets and timers, so one worker
    // left a core idle (the suite took 16 min on one worker).
    maxWorkers: 2,
    minWorkers: 1,
    // Files share their worker's process and module cache: loading Effect and the package's modules once per worker
    // instead of once per file halves the suite's CPU. (Vitest reads this for the whole run, not per project.)
    // `vitest.setup.ts` gives each file the `it` it would get in a fresh process, and a closed gRPC client no
    // longer dials once more after it was closed (patches/@grpc__grpc-js@1.14.7.patch), which the CLI's memory
    // world, checking that nothing in the process dials a socket, would see from an earlier file.
    poolOptions: { forks: { isolate: false } }
  }
})
