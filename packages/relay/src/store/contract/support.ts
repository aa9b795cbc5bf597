/**
 * Helpers of the `RelayStore` contract suite: fresh names and registrations (each test makes its own, because a
 * SQL layer is shared by every test of a file), and assertions on failures and options.
 */
import { MachineId, type WorkspaceId } from "@cmdop/domain/Machine"
import { WorkspaceName } from "@cmdop/domain/Workspace"
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as TestServices from "effect/TestServices"
import { randomBytes, randomUUID } from "node:crypto"
import type { MachineRegistration } from "../records.js"
import type { RelayStoreError } from "../RelayStoreError.js"
import type { RelayStore } from "../service.js"

export const suffix = () => randomBytes(4).toString("hex")
export const freshName = (label: string) => WorkspaceName.make(`${label}-${suffix()}`)
export const freshMachineId = () => MachineId.make(randomUUID())
export const freshSecretHash = () => randomBytes(32).toString("hex")

export const registration = (
  workspaceId: WorkspaceId,
  overrides: Partial<MachineRegistration> = {}
): MachineRegistration => {
  const host = `host-${suffix()}`
  return {
    id: freshMachineId(),
    workspaceId,
    hostname: host,
    name: host,
    os: "linux",
    agentVersion: "0.1.0",
    secretHash: freshSecretHash(),
    ...overrides
  }
}

/** The failure of `effect`, asserting it has the expected reason. */
export const failure = <A>(effect: Effect.Effect<A, RelayStoreError>, reason: RelayStoreError["reason"]) =>
  Effect.map(Effect.flip(effect), (error) => {
    assert.strictEqual(error._tag, "RelayStoreError")
    assert.strictEqual(error.reason, reason, error.message)
    return error
  })

export const some = <A>(option: Option.Option<A>): A => {
  assert.isTrue(Option.isSome(option), "expected Some, got None")
  return Option.getOrThrow(option)
}

/** One test of the suite: its title and its effect. */
export type ContractTest = readonly [string, Effect.Effect<unknown, unknown, RelayStore | TestServices.TestServices>]
