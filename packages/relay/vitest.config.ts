import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "relay",
    include: ["test/**/*.test.ts"],
    // Files share their worker's process and module cache (see the root vitest.config.ts).
    isolate: false,
    setupFiles: ["../../vitest.setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
