// Preloaded into the relay (NODE_OPTIONS=--require) when ABUSE_CPU_PROF is set: a V8 CPU profile of the whole run,
// written to $ABUSE_CPU_PROF/relay-<pid>.cpuprofile when the process exits (--cpu-prof is not allowed in
// NODE_OPTIONS). Open it in Chrome DevTools, or sum self time per function.
const inspector = require("node:inspector")
const fs = require("node:fs")
const path = require("node:path")

const session = new inspector.Session()
session.connect()
session.post("Profiler.enable")
session.post("Profiler.setSamplingInterval", { interval: 500 })
session.post("Profiler.start")
process.on("exit", () => {
  // An in-thread session answers synchronously, so the profile is written before the process goes.
  session.post("Profiler.stop", (error, result) => {
    if (error) return
    const file = path.join(process.env.ABUSE_CPU_PROF, `relay-${process.pid}.cpuprofile`)
    fs.writeFileSync(file, JSON.stringify(result.profile))
  })
})

// Memory figures every 500 ms next to the profile: RSS, heap used and total, external, array buffers (MiB).
const memoryFile = path.join(process.env.ABUSE_CPU_PROF, `relay-${process.pid}.memory.jsonl`)
const mib = (n) => Math.round(n / 1024 / 1024)
setInterval(() => {
  const m = process.memoryUsage()
  const line = {
    rss: mib(m.rss),
    heapUsed: mib(m.heapUsed),
    heapTotal: mib(m.heapTotal),
    external: mib(m.external),
    arrayBuffers: mib(m.arrayBuffers)
  }
  // Anonymous (malloc, V8) versus file-backed (mapped files, shared libraries) resident memory, in MiB.
  const status = fs.readFileSync("/proc/self/status", "utf8")
  for (const field of ["RssAnon", "RssFile", "RssShmem"]) {
    const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
    line[field] = Math.round(kb / 1024)
  }
  fs.appendFileSync(memoryFile, `${JSON.stringify(line)}\n`)
}, 500).unref()
