/**
 * The contract every `ShareService` passes (the relay's over each store layer). Call it once per implementation
 * with a factory that builds a fresh service with a way to make workspaces and machines and to change them
 * behind the service's back. Every test runs under `TestClock`: expiry is decided by the clock alone. The tests
 * live in two halves: `ShareContractMint` and `ShareContractLifecycle`.
 */
import { describe } from "@effect/vitest"
import { lifecycleContract } from "./ShareContractLifecycle.js"
import { mintAndValidateContract } from "./ShareContractMint.js"
import type { ShareFactory } from "./ShareContractSupport.js"

export {
  type FixtureWorkspace,
  refusedAsGarbage,
  type ShareFactory,
  shareFailure,
  type ShareFixture
} from "./ShareContractSupport.js"

export const shareServiceContract = (label: string, factory: ShareFactory) =>
  describe(`ShareService contract: ${label}`, () => {
    mintAndValidateContract(factory)
    lifecycleContract(factory)
  })
