import { defineProject } from "vitest/config"

// The attacks share one relay process and run one after another: a file of sequential tests. It runs after every
// other package, alone (`groupOrder`): its latency bounds compare a victim's calls with and without an attack, and
// another worker's tests starting and stopping processes beside it would be load that is not the attack's.
export default defineProject({
  test: {
    name: "abuse-tests",
    include: ["test/**/*.test.ts"],
    sequence: { groupOrder: 1 },
    setupFiles: ["../../vitest.setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})
