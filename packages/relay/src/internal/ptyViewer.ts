/**
 * The stream one attached client reads from an interactive session, and its input and resizes on their way to
 * the agent.
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
import type { RelayError } from "@cmdop/domain/RelayError"
import * as PullStream from "@cmdop/grpc/PullStream"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Caller } from "../Authenticator.js"
import { eachPiece, linkCaller } from "./coreContext.js"
import { atExpiry } from "./guestExpiry.js"
import type { AttachNotices } from "./attachNotices.js"
import { awaitChange, notify } from "./ptyState.js"
import type { Connection, PtyEnd, PtyState, Viewer } from "./sessions.js"
import * as TerminalSize from "./terminalSize.js"

/** Keystrokes go to the agent in pieces of at most this many bytes, so credit is taken in small steps. */
const INPUT_CHUNK = 64 * 1024

/**
 * Serves one viewer: forwards its input and resizes to the agent and streams the session's output from
 * `request.resumeFrom` (or the oldest byte held) on. `head` is emitted first (the `Attached` event).
 */
export const view = (options: {
  /** The relay's address, for errors. */
  readonly server: string
  readonly conn: Connection
  readonly state: PtyState
  readonly caller: Caller
  readonly request: AttachRequest
  readonly input: Stream.Stream<AttachInput>
  /** The call's notices (the gate holds the session), delivered in order with the output. */
  readonly notices: AttachNotices
  readonly head: (offset: number) => AttachEvent
}): Stream.Stream<AttachEvent, RelayCallError> =>
  PullStream.unwrapScoped(
    Effect.gen(function* () {
      const { caller, conn, request, state } = options
      const viewer = yield* join(conn, state, caller)
      const from = Math.max(request.resumeFrom ?? state.ring.start, state.ring.start)
      // Why this viewer stops besides the session: set here, then the viewer is woken (the wake is the session's
      // change signal, so the reader waits on one thing only; other viewers just find nothing new).
      const stop: ViewerStop = {}
      const wake = Effect.sync(() => notify(state))
      options.notices.onPush = () => notify(state)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          options.notices.onPush = undefined
        })
      )
      yield* PullStream.runForEach(options.input, (item) => forward(options.server, conn, state, caller, item)).pipe(
        // A refused input (an invalid size) ends this viewer with the reason; the session goes on.
        Effect.catchAll((e) =>
          Effect.sync(() => {
            stop.refused = e
          })
        ),
        // The client's input ending is its detach.
        Effect.ensuring(
          Effect.suspend(() => {
            stop.detached = true
            return wake
          })
        ),
        Effect.forkScoped
      )
      // A cut (revoked or expired link) sets `cutWith` and completes `cut`: wake the reader then.
      yield* Effect.forkScoped(Effect.zipRight(Deferred.await(viewer.cut), wake))
      const next = reader({ state, viewer, from, stop, notices: options.notices })
      return PullStream.prepend(
        options.head(from),
        PullStream.fromPull(() => next)
      )
    })
  )

/**
 * Adds a viewer to the session for the life of the scope; a guest is cut off when its link expires, and a
 * session its link opened is closed on the machine then.
 */
const join = (conn: Connection, state: PtyState, caller: Caller) =>
  Effect.gen(function* () {
    const viewer: Viewer = {
      principal: caller.principal,
      ...(caller.shareId === undefined ? { holder: caller } : { shareId: caller.shareId, guest: caller }),
      cut: yield* Deferred.make<PtyEnd>()
    }
    state.viewers.add(viewer)
    yield* Effect.addFinalizer(() => Effect.sync(() => state.viewers.delete(viewer)))
    // A session the guest's link opened ends with the link; one it was let into goes on.
    yield* atExpiry(
      caller,
      Effect.suspend(() => {
        const end: PtyEnd = { exitCode: 0, reason: "share link expired", cut: true }
        viewer.cutWith = end
        return Effect.zipRight(
          Deferred.succeed(viewer.cut, end),
          state.shareId !== undefined && state.shareId === caller.shareId
            ? conn.send({ _tag: "SessionClose", sessionId: state.id, reason: "share link expired" })
            : Effect.void
        )
      })
    )
    return viewer
  })

/** One item of a viewer's input on its way to the agent: a resize, or keystrokes under the input credit. */
const forward = (server: string, conn: Connection, state: PtyState, caller: Caller, item: AttachInput) => {
  if (item._tag === "Resize")
    return Effect.zipRight(
      TerminalSize.check(item.cols, item.rows, { server }),
      Effect.suspend(() => {
        state.cols = item.cols
        state.rows = item.rows
        return conn.send({ _tag: "SessionResize", sessionId: state.id, cols: item.cols, rows: item.rows })
      })
    )
  const send = (piece: Uint8Array) =>
    Effect.zipRight(
      state.inputCredit.take(piece.byteLength),
      conn.send({ _tag: "SessionInput", sessionId: state.id, data: piece, eof: false, caller: linkCaller(caller) })
    )
  return eachPiece(item.data, INPUT_CHUNK, send)
}

/** Why a viewer stops, set by its input fiber. */
interface ViewerStop {
  refused?: RelayError
  detached?: boolean
}

/**
 * The pull of a viewer's output: what the ring holds past the viewer's position, else the end (cut, session
 * over, machine lost, refused input, detach), else a wait for the next change (every one of those also wakes it).
 * The look and the wait are one synchronous step (`awaitChange`): output that lands in between wakes it.
 */
const reader = (options: {
  readonly state: PtyState
  readonly viewer: Viewer
  readonly from: number
  readonly stop: ViewerStop
  readonly notices: AttachNotices
}): Effect.Effect<Chunk.Chunk<AttachEvent>, Option.Option<RelayCallError>> => {
  const { state, stop, viewer } = options
  let position = options.from
  let done = false
  const end = (event: AttachEvent) => {
    done = true
    return Effect.succeed(Chunk.of(event))
  }
  const ended: Effect.Effect<never, Option.Option<RelayCallError>> = PullStream.end
  const look = (): Effect.Effect<Chunk.Chunk<AttachEvent>, Option.Option<RelayCallError>> | undefined => {
    if (done) return ended
    const notices = options.notices.take()
    if (notices !== undefined) return Effect.succeed(notices)
    if (viewer.cutWith) return end(AttachEvent.Ended(viewer.cutWith))
    if (state.lost) {
      done = true
      return Effect.fail(Option.some(state.lost))
    }
    if (position < state.ring.start) position = state.ring.start
    if (position < state.ring.end) {
      const chunks = state.ring.from(position)
      const last = chunks[chunks.length - 1]!
      position = last.offset + last.data.byteLength
      return Effect.succeed(
        Chunk.unsafeFromArray(chunks.map((c) => AttachEvent.Output({ offset: c.offset, data: c.data })))
      )
    }
    if (state.ended) return end(AttachEvent.Ended(state.ended))
    if (stop.refused) {
      done = true
      return Effect.fail(Option.some<RelayCallError>(stop.refused))
    }
    if (stop.detached) {
      done = true
      return ended
    }
    // Nothing new: wait for output, the end, a cut, a refused input, or the client's detach.
    return undefined
  }
  return Effect.suspend(() => look() ?? Effect.flatten(awaitChange(state, look)))
}
