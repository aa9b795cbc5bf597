/** @cmdop/testkit: helpers for tests of cmdop and of programs embedding it. */
export * as CapturedConsole from "./CapturedConsole.js"
export * as InProcessAgent from "./InProcessAgent.js"
export * as TempHome from "./TempHome.js"
export * as Processes from "./Processes.js"
