/**
 * @cmdop/agent: the machine side of cmdop connect. The daemon keeps one outbound stream to the relay and serves
 * the sessions multiplexed over it; the engine, identity, status and backoff are its parts, usable on their own.
 */
export * as AgentDaemon from "./AgentDaemon.js"
export * as AgentEngine from "./AgentEngine.js"
export * as AgentIdentity from "./AgentIdentity.js"
export * as AuditLog from "./AuditLog.js"
export * as ChildLedger from "./ChildLedger.js"
export * as Backoff from "./Backoff.js"
export * as DaemonCredential from "./DaemonCredential.js"
export * as DaemonStatus from "./DaemonStatus.js"
export * as ProcessRunner from "./ProcessRunner.js"
export * as ProcessRunnerMemory from "./ProcessRunnerMemory.js"
export * as PtySessions from "./PtySessions.js"
