/**
 * The behaviour every `RelayStore` layer must have, as one suite run once per implementation. Each test makes
 * its own workspaces and machines with random names, because a SQL layer is shared by every test of a file. The
 * tests live by part in `contract/` (workspaces, keys, machines, shares).
 */
import { layer } from "@effect/vitest"
import type * as Layer from "effect/Layer"
import * as Keys from "./contract/keys.js"
import * as Machines from "./contract/machines.js"
import * as Shares from "./contract/shares.js"
import * as Workspaces from "./contract/workspaces.js"
import type { RelayStore } from "./service.js"

/** Runs the contract suite against `storeLayer`, which is built once and shared by every test. */
export const relayStoreContract = (name: string, storeLayer: Layer.Layer<RelayStore, unknown>) =>
  layer(storeLayer, { timeout: "30 seconds" })(`RelayStore contract (${name})`, (it) => {
    for (const [title, test] of [...Workspaces.tests, ...Keys.tests, ...Machines.tests, ...Shares.tests])
      it.effect(title, () => test)
  })
