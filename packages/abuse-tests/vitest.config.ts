import { defineProject } from "vitest/config"

// The attacks share one relay process and run one after another: a file of sequential tests.
export default defineProject({
  test: {
    name: "abuse-tests",
    include: ["test/**/*.test.ts"],
    setupFiles: ["../../vitest.setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
