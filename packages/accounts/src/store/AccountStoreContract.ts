/**
 * The behaviour every `AccountStore` layer must have, as one suite run once per implementation
 * (`contract/people.ts` and `contract/oauth.ts`). Each test makes its own users with random emails and its own
 * workspace ids, because a SQL layer is shared by every test of a file. Times are passed explicitly where the
 * store takes them, so expiry is exercised without waiting.
 */
import { layer } from "@effect/vitest"
import type * as Layer from "effect/Layer"
import { oauthContract } from "./contract/oauth.js"
import { peopleContract } from "./contract/people.js"
import type { AccountStore } from "./service.js"

/** Runs the contract suite against `storeLayer`, which is built once and shared by every test. */
export const accountStoreContract = (name: string, storeLayer: Layer.Layer<AccountStore, unknown>) =>
  layer(storeLayer, { timeout: "30 seconds" })(`AccountStore contract (${name})`, (it) => {
    peopleContract(it)
    oauthContract(it)
  })
