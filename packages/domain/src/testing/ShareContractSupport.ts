/**
 * What the halves of the `ShareService` contract share: the fixture a factory builds, the fixed start instant
 * (every test runs under `TestClock`), and small helpers for minting, refusals and properties.
 */
import { assert } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { type ShareError } from "../ShareError.js"
import type { ShareLink } from "../ShareLink.js"
import type { ShareCreator, ShareMachine, ShareService } from "../ShareService.js"

/** A workspace the fixture made, with its machines. */
export interface FixtureWorkspace {
  readonly workspaceId: string
  readonly workspaceName: string
  readonly machines: ReadonlyArray<ShareMachine>
}

export interface ShareFixture {
  readonly shares: ShareService["Type"]
  /** A new workspace with `machines` (default 1) machines of its own. */
  readonly workspace: (machines?: number) => Effect.Effect<FixtureWorkspace>
  /** Rotates the workspace's API key (its key generation grows by one). */
  readonly rotateWorkspaceKey: (workspaceId: string) => Effect.Effect<void>
  /** Removes the machine from the relay. */
  readonly removeMachine: (machineId: string) => Effect.Effect<void>
}

export type ShareFactory = Effect.Effect<ShareFixture, never, Scope.Scope>

export const hour = 3_600_000
/** A realistic start time (a whole second), so messages show real dates. */
export const start = Date.parse("2026-04-25T12:34:56Z")
export const publicUrl = "https://relay.example.test/"

export const creatorOf = (ws: FixtureWorkspace, kind: ShareCreator["kind"] = "key"): ShareCreator => ({
  workspaceId: ws.workspaceId,
  principal: kind === "guest" ? "share sl_guest" : "ck_live_abcd",
  kind
})

/** The failure of `effect`, asserting it is a `ShareError` with `reason` (never a defect). */
export const shareFailure = <A>(effect: Effect.Effect<A, ShareError>, reason: ShareError["reason"]) =>
  Effect.map(Effect.exit(effect), (exit) => {
    assert.isTrue(Exit.isFailure(exit), `expected ${reason}, got a success`)
    const cause = (exit as Exit.Failure<A, ShareError>).cause
    if (!Cause.isFailType(cause)) assert.fail(`expected a ShareError, got ${Cause.pretty(cause)}`)
    const error = (cause as Cause.Fail<ShareError>).error
    assert.strictEqual(error._tag, "ShareError")
    assert.strictEqual(error.reason, reason, error.message)
    return error
  })

/** Asserts `token` is refused as garbage (`Malformed` or `BadSignature`), as a typed failure. */
export const refusedAsGarbage = (shares: ShareService["Type"], token: string) =>
  Effect.map(Effect.exit(shares.validate(token)), (exit) => {
    if (Exit.isSuccess(exit)) assert.fail(`accepted a bad token: ${JSON.stringify(token)}`)
    const cause = (exit as Exit.Failure<unknown, ShareError>).cause
    if (!Cause.isFailType(cause))
      assert.fail(`not a typed failure for ${JSON.stringify(token)}: ${Cause.pretty(cause)}`)
    const reason = (cause as Cause.Fail<ShareError>).error.reason
    assert.include(["Malformed", "BadSignature"], reason, JSON.stringify(token))
  })

export const kinds = (link: ShareLink) => link.events.map((e) => e.kind)

/** Runs a fast-check property whose body is an Effect, on the calling test's runtime (its `TestClock`). */
export const property = <A, E>(
  arbitrary: FastCheck.Arbitrary<A>,
  body: (a: A) => Effect.Effect<void, E>,
  numRuns: number
) =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) =>
    Effect.promise(() =>
      FastCheck.assert(
        FastCheck.asyncProperty(arbitrary, (a) => Runtime.runPromise(runtime)(body(a))),
        { numRuns }
      )
    )
  )

/** A fresh fixture with the clock at `start`. */
export const setupOf = (factory: ShareFactory) => Effect.zipLeft(factory, TestClock.setTime(start))

/** Mints a link to `machine` (default: the workspace's first) with the workspace key as creator. */
export const mintFor = (fx: ShareFixture, ws: FixtureWorkspace, ttlSeconds: number, machine = ws.machines[0]!) =>
  fx.shares.mint({ creator: creatorOf(ws), machine, ttlSeconds, publicUrl })
