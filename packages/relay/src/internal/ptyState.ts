/**
 * The relay's record of an interactive session and what happens to it: output arriving from the agent (into the
 * session's replay ring), the session's end or its machine's loss, and guests cut off from it. Every change calls
 * the session's waiters (`notify`), which wakes the viewers (`ptyViewer.ts`) and whoever waits for its end.
 */
import type { RelayCallError } from "@cmdop/domain/RelayClient"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import { InputCredit } from "./inputCredit.js"
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
      waiters: new Set(),
      viewers: new Set(),
      inputCredit: new InputCredit(input.window),
      unacked: 0
    }
    return state
  })

/** Calls (and forgets) everything waiting for the session's next change. */
export const notify = (state: PtyState): void => {
  if (state.waiters.size === 0) return
  const waiters = [...state.waiters]
  state.waiters.clear()
  for (const waiter of waiters) waiter()
}

/**
 * Waits until `attempt` answers something: tried at once, then again after each change. The first try and the
 * registration happen in one synchronous step, so a change cannot slip in between.
 */
export const awaitChange = <A>(state: PtyState, attempt: () => A | undefined): Effect.Effect<A> =>
  Effect.flatMap(
    // No canceler (one would wrap every wait in `onInterrupt`, and a viewer waits once per keystroke's echo): the
    // waker only resumes the waiter, which looks again itself, so a waker left by an interrupted wait resumes nothing
    // and runs no `attempt` (Effect ignores a resume after the interruption); the next change drops it.
    Effect.async<A | undefined>((resume) => {
      const first = attempt()
      if (first !== undefined) return resume(Effect.succeed(first))
      state.waiters.add(() => resume(changed))
    }),
    (found) => (found === undefined ? awaitChange(state, attempt) : Effect.succeed(found))
  )

const changed = Effect.succeed(undefined)

/** Records output from the agent and wakes the viewers (plain code: called once per keystroke's echo). */
export const pushOutput = (state: PtyState, offset: number, data: Uint8Array, now: number): void => {
  state.ring.push({ offset, data })
  state.lastActivityAt = now
  notify(state)
}

/** The session is over (exit, close, idle) or its machine dropped: every viewer learns at once. */
export const finish = (state: PtyState, end: { readonly ended: PtyEnd } | { readonly lost: RelayCallError }) =>
  Effect.suspend(() => {
    if ("ended" in end) state.ended = end.ended
    else state.lost = end.lost
    notify(state)
    return Effect.void
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
