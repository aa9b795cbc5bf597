import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["packages/*"],
    reporters: ["default"]
    // Still a fresh process per file. `isolate: false` halves the CPU of the pure packages and of agent, and
    // `vitest.setup.ts` fixes what broke TestClock tests without isolation; but the full suite without isolation
    // still failed twice: the CLI's memory world saw a socket to 127.0.0.1:50051 left dialing by an earlier file of
    // its worker, and ProcessRunner's shell test saw another PATH. Those leaks need fixing before it can be the
    // default.
  }
})
