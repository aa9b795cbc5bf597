/**
 * `@cmdop/gate`: the machine's gate. A `permissions.yaml` policy (`PolicyFile`, `Policy`), what a request really
 * runs (`Reader`, `Plan`), the floor (`Floor`), the decision and its explanation (`Decide`, `Explain`), the audit
 * line (`AuditRecord`) and the live policy (`PolicyStore`).
 */
export * as AuditRecord from "./AuditRecord.js"
export * as CommandPattern from "./CommandPattern.js"
export * as Decide from "./Decide.js"
export * as Explain from "./Explain.js"
export * as Floor from "./Floor.js"
export * as Plan from "./Plan.js"
export * as Policy from "./Policy.js"
export * as PolicyError from "./PolicyError.js"
export * as PolicyFile from "./PolicyFile.js"
export * as PolicyStore from "./PolicyStore.js"
export * as Reader from "./Reader.js"
export * as Request from "./Request.js"
export * as Wrappers from "./Wrappers.js"
