import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "cli",
    include: ["test/**/*.test.ts"],
    // A fresh process per file, unlike the other packages: the memory world asserts that nothing in the process
    // dials a socket while it runs, and a gRPC client an earlier file closed after a refused connection still
    // makes one more attempt when its backoff timer fires (grpc-js 1.14), which that check would see.
    isolate: true,
    globalSetup: ["./test/globalSetup.ts"],
    setupFiles: ["../../vitest.setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
