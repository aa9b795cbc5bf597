// A preload (`node --require bench/heap-sample.cjs …`) for comparing what builds allocate per call, a figure the
// box's load does not move: each SIGUSR2 toggles V8's sampling heap profiler over every allocation (those already
// collected included), and each stop writes `<HEAP_SAMPLE_DIR or /tmp>/<pid>-<n>.json` (a `.heapprofile`: the
// sizes of its nodes sum to the bytes allocated meanwhile). `bench/cluster-hop.mjs` signals it around each tool run
// when started with `HOP_PRELOAD=bench/heap-sample.cjs`.
const inspector = require("node:inspector")
const fs = require("node:fs")
const path = require("node:path")

const dir = process.env.HEAP_SAMPLE_DIR || "/tmp"
const session = new inspector.Session()
session.connect()
let sampling = false
let n = 0
process.on("SIGUSR2", () => {
  sampling = !sampling
  if (sampling)
    session.post("HeapProfiler.startSampling", {
      samplingInterval: 2048,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true
    })
  else
    session.post("HeapProfiler.stopSampling", (error, result) => {
      if (!error) fs.writeFileSync(path.join(dir, `${process.pid}-${n++}.json`), JSON.stringify(result.profile))
    })
})
