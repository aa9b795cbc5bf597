import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "cli",
    include: ["test/**/*.test.ts"],
    // Files share their worker's process and module cache (see the root vitest.config.ts). The memory world's
    // check that nothing in the process dials a socket holds across files because a closed gRPC client no longer
    // makes a last reconnect attempt after its backoff (patches/@grpc__grpc-js@1.14.7.patch).
    isolate: false,
    globalSetup: ["./test/globalSetup.ts"],
    setupFiles: ["../../vitest.setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
