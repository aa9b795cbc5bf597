/**
 * @cmdop/testkit: the worlds cross-package tests run in — an agent attached in-process to a relay core, a real
 * relay on loopback with real agent daemons, and the bundled CLI as real processes. The leaf helpers (temp homes,
 * polling, liveness, free ports, a captured console) live in @cmdop/test-helpers.
 */
export * as InProcessAgent from "./InProcessAgent.js"
export * as LoopbackRelay from "./LoopbackRelay.js"
export * as Processes from "./Processes.js"
