/**
 * Interactive sessions on the relay: opening or joining a PTY session on a connected machine, and the viewer
 * stream each attached client reads.
 *
 * The relay keeps a 1 MiB ring of each session's output (filled from the agent's stream, acknowledged at once);
 * a viewer reads the ring from its own position, so a late viewer sees the screen, a reconnecting client resumes
 * at the exact byte it had, and a slow viewer never holds up the others (one that falls more than a ring behind
 * skips ahead to the oldest byte still held).
 *
 * How a viewer ends: the session ends (`Ended` with the exit status), the viewer is cut (revoked or expired
 * share link: `Ended` with that reason), the machine drops (the stream fails with Unavailable; the session may
 * live on at the agent, and the client may attach again), or the client detaches (its input ends or it goes
 * away): the session keeps running.
 */
import { AttachEvent, type AttachInput, type AttachRequest, type RelayCallError } from "@cmdop/domain/RelayClient"
import type { RelayMessage } from "@cmdop/protocol/generated/cmdop/connect/v1/agent"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"
import type { Caller } from "../Authenticator.js"
import { OutputRing } from "./outputRing.js"
import type { Connection, PtyEnd, PtyState, Viewer } from "./sessions.js"

const INPUT_CHUNK = 64 * 1024

const toBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)

/** A new relay-side record for a PTY session (opened now, or adopted from an agent's Hello). */
export const makeState = (input: {
  readonly id: string
  readonly owner: string
  readonly command: string
  readonly cols: number
  readonly rows: number
  readonly createdAt: number
  readonly window: number
}) =>
  Effect.gen(function* () {
    const state: PtyState = {
      id: input.id,
      owner: input.owner,
      command: input.command,
      createdAt: input.createdAt,
      cols: input.cols,
      rows: input.rows,
      lastActivityAt: input.createdAt,
      ring: new OutputRing(),
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

/**
 * Serves one viewer: forwards its input and resizes to the agent and streams the session's output from
 * `from` on. `head` is emitted first (the `Attached` event).
 */
export const view = (options: {
  readonly conn: Connection
  readonly state: PtyState
  readonly caller: Caller
  readonly request: AttachRequest
  readonly input: Stream.Stream<AttachInput>
  readonly head: (offset: number) => AttachEvent
}): Stream.Stream<AttachEvent, RelayCallError> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const { caller, conn, request, state } = options
      const viewer: Viewer = {
        principal: caller.principal,
        ...(caller.shareId === undefined ? {} : { shareId: caller.shareId, guest: caller }),
        cut: yield* Deferred.make<PtyEnd>()
      }
      state.viewers.add(viewer)
      yield* Effect.addFinalizer(() => Effect.sync(() => state.viewers.delete(viewer)))
      // A guest is cut off the moment the link expires (the session itself goes on).
      if (caller.expiresAt !== undefined) {
        const expiresAt = caller.expiresAt
        yield* Effect.gen(function* () {
          yield* Effect.sleep(Duration.millis(Math.max(0, expiresAt - (yield* Clock.currentTimeMillis))))
          const end = { exitCode: 0, reason: "share link expired" }
          viewer.cutWith = end
          yield* Deferred.succeed(viewer.cut, end)
        }).pipe(Effect.forkScoped)
      }
      // Subscribe before reading the ring: anything pushed after this point also ticks the subscription.
      const ticks = yield* PubSub.subscribe(state.changes)
      let position = Math.max(request.resumeFrom ?? state.ring.start, state.ring.start)
      const attachedAt = position

      const send = (message: RelayMessage) => conn.send(message)
      const detached = yield* Deferred.make<void>()
      yield* options.input.pipe(
        Stream.runForEach((item) =>
          item._tag === "Resize"
            ? Effect.suspend(() => {
                state.cols = item.cols
                state.rows = item.rows
                return send({
                  kind: { $case: "resize", value: { sessionId: state.id, cols: item.cols, rows: item.rows } }
                })
              })
            : Effect.forEach(
                Array.from({ length: Math.ceil(item.data.byteLength / INPUT_CHUNK) }, (_, i) =>
                  item.data.subarray(i * INPUT_CHUNK, (i + 1) * INPUT_CHUNK)
                ),
                (piece) =>
                  Effect.zipRight(
                    state.inputCredit.take(piece.byteLength),
                    send({
                      kind: {
                        $case: "input",
                        value: {
                          sessionId: state.id,
                          data: toBuffer(piece),
                          eof: false,
                          caller: { kind: caller.kind, principal: caller.principal, shareId: caller.shareId ?? "" }
                        }
                      }
                    })
                  ),
                { discard: true }
              )
        ),
        // The client's input ending is its detach.
        Effect.ensuring(Deferred.succeed(detached, undefined)),
        Effect.forkScoped
      )

      let done = false
      const next: Effect.Effect<Chunk.Chunk<AttachEvent>, Option.Option<RelayCallError>> = Effect.suspend(() => {
        if (done) return Effect.fail(Option.none())
        if (viewer.cutWith) {
          done = true
          return Effect.succeed(Chunk.of(AttachEvent.Ended(viewer.cutWith)))
        }
        if (state.lost) return Effect.fail(Option.some(state.lost))
        if (position < state.ring.start) position = state.ring.start
        const chunks = state.ring.from(position)
        if (chunks.length > 0) {
          const last = chunks[chunks.length - 1]!
          position = last.offset + last.data.byteLength
          return Effect.succeed(
            Chunk.fromIterable(chunks.map((c) => AttachEvent.Output({ offset: c.offset, data: c.data })))
          )
        }
        if (state.ended) {
          done = true
          return Effect.succeed(Chunk.of(AttachEvent.Ended(state.ended)))
        }
        // Nothing new: wait for output, the end, a cut, or the client's detach.
        return Effect.raceAll([
          Effect.as(ticks.take, Chunk.empty<AttachEvent>()),
          Effect.map(Deferred.await(viewer.cut), (end) => {
            done = true
            return Chunk.of(AttachEvent.Ended(end))
          }),
          Effect.zipRight(
            Deferred.await(detached),
            Effect.sync(() => {
              done = true
              return Chunk.empty<AttachEvent>()
            })
          )
        ])
      })
      return Stream.concat(Stream.succeed(options.head(attachedAt)), Stream.repeatEffectChunkOption(next))
    })
  )
