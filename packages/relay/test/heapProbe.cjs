// Preloaded into a relay under test (`node --require <this> … relay serve`): on SIGUSR2 it collects all garbage and
// writes `heap-probe <bytes of V8 heap in use>` to stderr, so a test can tell what the process holds.
const v8 = require("node:v8")
const vm = require("node:vm")

v8.setFlagsFromString("--expose-gc")
const gc = vm.runInNewContext("gc")

process.on("SIGUSR2", () => {
  for (let i = 0; i < 3; i++) gc()
  process.stderr.write(`heap-probe ${v8.getHeapStatistics().used_heap_size}\n`)
})
