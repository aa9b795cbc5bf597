/**
 * The relay's record of an interactive session and what happens to it: output arriving from the agent (into the
 * session's replay ring), the session's end or its machine's loss, and guests cut off from it. Every change ticks
 * `changes`, which wakes the viewers (`ptyViewer.ts`).
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import { ReplayRing } from "./replayRing.js"
import type { PtyEnd, PtyState } from "./sessions.js"

/** A new relay-side record for a PTY session (opened now, or adopted from an agent's Hello). */
export const makeState = (input: {
  readonly id: string
  readonly owner: string
  readonly shareId?: string
  readonly command: string
  readonly cols: number
  readonly rows: number
  readonly createdAt: number
  readonly lastActivityAt?: number
  readonly window: number
}) =>
  Effect.gen(function* () {
    const state: PtyState = {
      id: input.id,
      owner: input.owner,
      ...(input.shareId === undefined ? {} : { shareId: input.shareId }),
      command: input.command,
      createdAt: input.createdAt,
      cols: input.cols,
      rows: input.rows,
      lastActivityAt: input.lastActivityAt ?? input.createdAt,
      ring: new ReplayRing(),
      changes: yield* PubSub.sliding<void>(1),
      viewers: new Set(),
      inputCredit: yield* Effect.makeSemaphore(input.window)
    }
    return state
  })

/** Records output from the agent and wakes the viewers. */
export const pushOutput = (state: PtyState, offset: number, data: Uint8Array, now: number) =>
  Effect.suspend(() => {
    state.ring.push({ offset, data })
    state.lastActivityAt = now
    return PubSub.publish(state.changes, undefined)
  })

/** The session is over (exit, close, idle) or its machine dropped: every viewer learns at once. */
export const finish = (state: PtyState, end: { readonly ended: PtyEnd } | { readonly lost: RelayCallError }) =>
  Effect.suspend(() => {
    if ("ended" in end) state.ended = end.ended
    else state.lost = end.lost
    return PubSub.publish(state.changes, undefined)
  })

/** Cuts the viewers that came through `shareId` (revocation, expiry). */
export const cutViewers = (state: PtyState, shareId: string, end: PtyEnd) =>
  Effect.forEach(
    [...state.viewers].filter((v) => v.shareId === shareId),
    (v) =>
      Effect.suspend(() => {
        v.cutWith = end
        return Deferred.succeed(v.cut, end)
      }),
    { discard: true }
  )
