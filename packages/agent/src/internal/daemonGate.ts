/**
 * The daemon's gate for its lifetime: the `PolicyStore` on the machine's `permissions.yaml` (watched and polled),
 * the `Gate` over it writing to the audit log, and the `GateFiles` the local commands read and answer through.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as PolicyStore from "@cmdop/gate/PolicyStore"
import { CmdopPaths } from "@cmdop/node/CmdopPaths"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as AuditLog from "../AuditLog.js"
import type * as AgentEngine from "../AgentEngine.js"
import * as Gate from "../Gate.js"
import * as GateFiles from "../GateFiles.js"

export const start = (options: {
  readonly path: string | undefined
  readonly auditLog: AuditLog.AuditLog["Type"]
  readonly machine: string
}): Effect.Effect<NonNullable<AgentEngine.Options["gate"]>, never, FileSystem.FileSystem | CmdopPaths | Scope.Scope> =>
  Effect.gen(function* () {
    const paths = yield* CmdopPaths
    const file = options.path ?? paths.permissions
    const store = yield* PolicyStore.make({ path: file })
    const status = yield* store.status
    yield* Effect.logInfo(
      status.policy === undefined
        ? `permissions: no ${file}: no gate configured (keys, users and guests allowed exec and shell)`
        : `permissions: ${file} (${status.policy.rules.length} rules)${status.error ? `; ${status.error.message}` : ""}`
    )
    const gate = yield* Gate.make({ auditLog: options.auditLog }).pipe(
      Effect.provideService(PolicyStore.PolicyStore, store)
    )
    yield* GateFiles.serve(gate).pipe(Effect.provideService(PolicyStore.PolicyStore, store))
    return { gate, machine: options.machine }
  })
