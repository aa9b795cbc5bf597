/**
 * @cmdop/test-helpers: the leaf helpers every package's tests may use — temp homes, polling with a timeout,
 * process liveness, free ports, a captured console. Depends on nothing of ours. (`Postgres`, a fresh schema or
 * database per run, is imported by its own path so that tests without PostgreSQL never load its driver.)
 */
export * as CapturedConsole from "./CapturedConsole.js"
export * as Eventually from "./Eventually.js"
export * as Footprint from "./Footprint.js"
export * as FreePort from "./FreePort.js"
export * as Liveness from "./Liveness.js"
export * as TempHome from "./TempHome.js"
